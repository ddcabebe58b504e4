#!/usr/bin/env bash
# Installs what fixline needs and is missing; safe to run again.
#   scripts/setup.sh            runtime needs (ONNX Runtime library)
#   scripts/setup.sh --test     plus the test peers (PostgreSQL server, Python onnxruntime)
#   scripts/setup.sh --train    plus the model training requirements
#   scripts/setup.sh --bench    plus the test peers and Janus (the load tool's reference SFU)
# Debian packages come from apt, the ONNX Runtime shared library from the official
# Python wheel (PyPI) into .deps/ (git-ignored). Nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

ONNXRUNTIME_VERSION=1.31.1   # matches ort 2.0.0-rc.15 (api-31); keep in step with Cargo.toml
want_test=0
want_bench=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--bench" ] && want_test=1 && want_bench=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
need_deb() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if ! command -v cargo >/dev/null; then
  echo "setup: cargo (Rust 1.85 or newer) is required; install it with rustup" >&2
  exit 1
fi

need_deb ca-certificates gcc pkg-config python3 python3-pip python3-venv libvpx-dev
[ $want_bench -eq 1 ] && need_deb janus
if [ $want_test -eq 1 ]; then
  need_deb postgresql iproute2 util-linux chromium
  # Node.js and npm: Debian's, unless the machine already has them (e.g. NodeSource's,
  # which bundles npm and conflicts with Debian's npm package).
  command -v node >/dev/null || need_deb nodejs
  command -v npm >/dev/null || need_deb npm
fi

# ONNX Runtime from the official wheel (the ort crate loads it at run time).
ort_dir=.deps/onnxruntime-$ONNXRUNTIME_VERSION
if [ ! -f "$ort_dir/lib/libonnxruntime.so" ]; then
  echo "setup: fetching ONNX Runtime $ONNXRUNTIME_VERSION from its Python wheel"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --python-version 3.11 "onnxruntime==$ONNXRUNTIME_VERSION"
  mkdir -p "$ort_dir/lib"
  python3 - "$tmp" "$ort_dir/lib" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base.startswith("libonnxruntime.so"):
            with open(os.path.join(sys.argv[2], base), "wb") as f:
                f.write(z.read(name))
PY
  so=$(ls "$ort_dir"/lib/libonnxruntime.so.* | head -n 1)
  ln -sf "$(basename "$so")" "$ort_dir/lib/libonnxruntime.so"
  rm -rf "$tmp"
  trap - EXIT
fi
ln -sfn "onnxruntime-$ONNXRUNTIME_VERSION" .deps/onnxruntime

# Browser-test peers from npm: playwright-core (it drives Debian's Chromium; no browser
# download) and whip-whep (medooze's WHIP/WHEP clients, run inside Chromium).
if [ $want_test -eq 1 ]; then
  stamp=tests/browser/node_modules/.installed-$(sha256sum tests/browser/package.json | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    echo "setup: installing the browser-test peers (playwright-core, whip-whep) from npm"
    (cd tests/browser && npm install --no-audit --no-fund --silent --no-package-lock)
    touch "$stamp"
  fi
fi

# Python peers in .deps/venv: the parity test's (--test) or the training scripts' (--train).
python_reqs=""
[ $want_test -eq 1 ] && python_reqs=models/training/requirements-test.txt
[ "${1:-}" = "--train" ] && python_reqs=models/training/requirements.txt
if [ -n "$python_reqs" ]; then
  stamp=.deps/venv/.installed-$(sha256sum "$python_reqs" | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages from $python_reqs into .deps/venv"
    [ -x .deps/venv/bin/python ] || python3 -m venv .deps/venv || { need_deb python3-venv; python3 -m venv .deps/venv; }
    .deps/venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$python_reqs"
    touch "$stamp"
  fi
fi
# The diagnosis benchmark's OpenCV reference (benches/diagnosis_py.py).
if [ $want_bench -eq 1 ] && ! .deps/venv/bin/python -c "import cv2" 2>/dev/null; then
  echo "setup: installing OpenCV (the diagnosis benchmark's reference) into .deps/venv"
  .deps/venv/bin/python -m pip install --quiet --disable-pip-version-check opencv-python-headless==5.0.0.93
fi
echo "setup: ok (ONNX Runtime at .deps/onnxruntime/lib)"
