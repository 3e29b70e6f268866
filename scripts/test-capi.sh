#!/usr/bin/env bash
# Tests libRestore from outside, as its users see it:
#   1. `make install` into a temporary prefix (release build);
#   2. the C tests (tests/c/test_capi.c), built with pkg-config against that prefix;
#   3. the C example (examples/c/restore_png.c) built the same way;
#   4. the Python binding's tests (python/tests, pytest), which also compare the example's
#      and the binding's output with rrun's.
# The model is the dncnn fixture converted with the debug `convert`.
#
# Usage: scripts/test-capi.sh [--c-only]      (PYTHON=... picks the interpreter for pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
c_only=0
[[ "${1:-}" == "--c-only" ]] && c_only=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

swift build --product convert
swift build --product rrun
bin="$(swift build --show-bin-path)"
make install PREFIX="$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

# dncnn's graph already adds its input back (output = image + correction), so no --residual.
model="$work/dncnn.rgraph"
"$bin/convert" Tests/Fixtures/models/dncnn/model.onnx -o "$model" --range 0,1

cc -std=c11 -Wall -Wextra -Werror -O1 -g tests/c/test_capi.c $(pkg-config --cflags --libs restore) -lpthread \
    -o "$work/test_capi"
(cd "$work" && ./test_capi "$model")
[[ $c_only == 1 ]] && exit 0

cc -std=c11 -Wall -Wextra -Werror -O2 examples/c/restore_png.c $(pkg-config --cflags --libs restore libpng) \
    -o "$work/restore_png"

RESTORE_LIBRARY="$prefix/lib/libRestore.so" RESTORE_TEST_MODEL="$model" RESTORE_RRUN="$bin/rrun" \
    RESTORE_C_EXAMPLE="$work/restore_png" PYTHONPATH="$PWD/python" \
    "${PYTHON:-python3}" -m pytest -q python/tests
