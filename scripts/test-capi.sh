#!/usr/bin/env bash
# Tests libRestore from outside, as its users see it:
#   1. `make install` into a temporary prefix (release build), and a check that the
#      installed library exports exactly the functions of restore.h (scripts/library-exports.sh);
#   2. the C tests (Tests/CAPI/test_capi.c), built with pkg-config against that prefix;
#   3. the C example (examples/c/restore_png.c) built the same way;
#   4. the Python package as users install it: `pip install ./python` (imports, finds the
#      library through RESTORE_LIBRARY), and the wheel of scripts/build-wheel.sh, which
#      carries libRestore, libRestoreImageIO and the Swift runtime;
#   5. the Python binding's tests (python/tests, pytest) on that installed wheel, which also
#      compare the examples', the binding's and restore.distributed's (on a local Ray
#      cluster) outputs with rrun's.
# The model is the dncnn fixture converted with the debug `convert`.
#
# Usage: scripts/test-capi.sh [--c-only]      (PYTHON=... picks the interpreter for pytest)
#        scripts/test-capi.sh --tsan          the C tests under ThreadSanitizer: libRestore
#            built with -sanitize=thread into .build-tsan, the test with the toolchain's clang
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
cc="${CC:-$(command -v cc || command -v clang)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

swift build --product convert
swift build --product rrun
bin="$(swift build --show-bin-path)"
# dncnn's graph already adds its input back (output = image + correction), so no --residual.
model="$work/dncnn.rgraph"
"$bin/convert" Tests/Fixtures/models/dncnn/model.onnx -o "$model" --range 0,1
# The BigGAN-deep checkpoint fixture, for restore_generate and restore_dgp.
generator="$work/biggan-deep.rgraph"
"$bin/convert" Tests/Fixtures/checkpoints/biggan-deep -o "$generator" --truncation 0.4

if [[ "$mode" == "--tsan" ]]; then
    swift build -c debug -Xswiftc -sanitize=thread --product Restore --build-path .build-tsan
    tsan_lib="$PWD/.build-tsan/debug"
    # Swift's TSan runtime intercepts libdispatch, so the C program links it and BlocksRuntime.
    swift_lib="$(dirname "$(ldd "$tsan_lib/libRestore.so" | awk '/libswiftCore.so/ { print $3 }')")"
    "$(dirname "$(command -v swift)")/clang" -std=c11 -g -O1 -fsanitize=thread -I Sources/CRestore/include \
        Tests/CAPI/test_capi.c -L "$tsan_lib" -Wl,-rpath,"$tsan_lib" -lRestore \
        -L "$swift_lib" -Wl,-rpath,"$swift_lib" -ldispatch -lBlocksRuntime -lpthread -o "$work/test_capi_tsan"
    (cd "$work" && TSAN_OPTIONS="halt_on_error=1" ./test_capi_tsan "$model" "$generator")
    exit 0
fi
make install PREFIX="$prefix"
scripts/library-exports.sh check "$prefix/lib/libRestore.so"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

"$cc" -std=c11 -Wall -Wextra -Werror -O1 -g Tests/CAPI/test_capi.c $(pkg-config --cflags --libs restore) -lpthread \
    -o "$work/test_capi"
(cd "$work" && ./test_capi "$model" "$generator")
[[ "$mode" == "--c-only" ]] && exit 0

"$cc" -std=c11 -Wall -Wextra -Werror -O2 examples/c/restore_png.c $(pkg-config --cflags --libs restore libpng) \
    -o "$work/restore_png"

python="${PYTHON:-python3}"
"$python" -m pip install -q --no-deps --target "$work/plain" ./python
RESTORE_LIBRARY="$prefix/lib/libRestore.so" PYTHONPATH="$work/plain" "$python" -c \
    "import restore; assert restore.library_path() == '$prefix/lib/libRestore.so'; print('pip install ./python: restore', restore.version())"
PYTHON="$python" scripts/build-wheel.sh "$work/dist"
wheel="$(ls "$work"/dist/restore-*.whl)"
"$python" -m pip install -q --no-deps --target "$work/site" "$wheel"

RESTORE_TEST_WHEEL="$wheel" RESTORE_TEST_MODEL="$model" RESTORE_TEST_GENERATOR="$generator" RESTORE_RRUN="$bin/rrun" RESTORE_CONVERT="$bin/convert" \
    RESTORE_C_EXAMPLE="$work/restore_png" PYTHONPATH="$work/site" \
    "$python" -m pytest -q -p no:cacheprovider python/tests
