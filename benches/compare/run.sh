#!/usr/bin/env bash
# One command for the onnxi / ONNX Runtime / tract comparison (issue 4, item 5).
#
#   benches/compare/run.sh [--write-results] [--filter TEXT] [--threads 1,2] [--regimes back-to-back,idle,busy]
#                          [--rounds N] [--batch-ms MS] [--gap-ms MS] [--idle-ms MS] [--model-run]
#
# Creates benches/compare/.venv with the onnxruntime wheel (once), points
# ORT_DYLIB_PATH at the libonnxruntime.so inside it, then builds and runs the
# harness in release mode. An ORT_DYLIB_PATH already set to an existing
# libonnxruntime.so.1.32.0 is used as it is (no venv). Normal builds and CI
# of onnxi never need any of it.
set -euo pipefail

ORT_VERSION=1.32.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [[ -n "${ORT_DYLIB_PATH:-}" && -f "$ORT_DYLIB_PATH" && "$ORT_DYLIB_PATH" == *".so.$ORT_VERSION" ]]; then
    dylib="$ORT_DYLIB_PATH"
else
if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv with onnxruntime==$ORT_VERSION" >&2
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "onnxruntime==$ORT_VERSION"
fi

# Find the library from the wheel's files rather than importing onnxruntime,
# which would need numpy at import time for nothing.
dylib="$(find "$venv" -path "*/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -print -quit)"
if [[ -z "$dylib" ]]; then
    echo "libonnxruntime.so.$ORT_VERSION not found under $venv" >&2
    exit 1
fi
fi
export ORT_DYLIB_PATH="$dylib"

# Record how the run was started, for RESULTS.md.
command="benches/compare/run.sh"
for arg in "$@"; do command+=" $(printf '%q' "$arg")"; done
export COMPARE_COMMAND="$command"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
cd "$here"
exec cargo run --release --quiet --bin onnxi-compare -- "$@"
