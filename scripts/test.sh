#!/usr/bin/env bash
# Runs the whole test suite; exits non-zero on any failure.
#
# Installs what is missing, starts a throwaway PostgreSQL server on a loopback port
# (removed afterwards) so the storage tests run against SQLite and PostgreSQL, and runs
# the tests inside a private network namespace with only `lo`, so no test traffic can
# leave the machine. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

# Build outside the namespace (it needs the registry); test inside it, offline.
cargo fetch --locked
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/lib/libonnxruntime.so}"
cargo test --locked --no-run --all-targets

inner=$(mktemp)
trap 'rm -f "$inner"' EXIT
cat > "$inner" <<'INNER'
set -euo pipefail
ip link set lo up 2>/dev/null || true
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdir=$(mktemp -d /tmp/fixline-pg.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] && chown postgres "$pgdir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 --no-locale >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir -c fsync=off -c max_connections=200" start >/dev/null
export FIXLINE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
export FIXLINE_REQUIRE_POSTGRES=1
export FIXLINE_TEST_PYTHON="$PWD/.deps/venv/bin/python"
export FIXLINE_REQUIRE_BROWSER=1
echo "test: PostgreSQL on 127.0.0.1:$port (throwaway)"
cargo test --locked --offline "$@"
INNER

if unshare -n true 2>/dev/null; then
  unshare -n bash "$inner" "$@"
else
  echo "test: cannot create a network namespace here; running on the host loopback" >&2
  bash "$inner" "$@"
fi
