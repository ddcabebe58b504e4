#!/usr/bin/env bash
# Builds and starts fixline with its embedded defaults: SQLite in ./data, the bundled
# models, and the demo data set. Extra arguments go to `fixline serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --bin fixline
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/lib/libonnxruntime.so}"
export FIXLINE_DATA_DIR="${FIXLINE_DATA_DIR:-$PWD/data}"
exec target/release/fixline serve --demo "$@"
