#!/usr/bin/env bash
# Builds a wheel of the Python package (python/) that carries its native libraries, so it
# runs where neither the Swift toolchain nor this repository is (a Ray worker, say):
#   restore/libRestore.so         release build, exporting only restore.h (make install)
#   restore/libRestoreImageIO.so  rrun's PNG codec (restore.images)
#   restore/libswift*.so, libFoundation*.so, …   the Swift runtime they need
#                                 (make install BUNDLE_SWIFT_RUNTIME=1); found through $ORIGIN
# The target still needs the Debian libraries Restore links: libopenblas0 and libpng16-16.
# The wheel is tagged py3-none-<platform> (python/setup.py): any Python 3, this platform.
#
# Usage: scripts/build-wheel.sh [DIST_DIR]     (default dist/; PYTHON=... picks the interpreter,
#        which needs pip and reaches PyPI or a mirror for setuptools, the build backend)
set -euo pipefail
cd "$(dirname "$0")/.."
dist="$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)"
python="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
make install PREFIX="$work/prefix" BUNDLE_SWIFT_RUNTIME=1
swift build -c release --product RestoreImageIO
release="$(swift build -c release --show-bin-path)"

mkdir -p "$work/python/restore"
cp python/pyproject.toml python/setup.py python/README.md "$work/python/"
cp python/restore/*.py "$work/python/restore/"
cp "$work/prefix/lib/libRestore.so" "$release/libRestoreImageIO.so" "$work/python/restore/"
# The Swift runtime of both libraries: make install listed libRestore's; libRestoreImageIO
# needs only libswiftCore, which is among them.
xargs -I{} cp {} "$work/python/restore/" < "$work/prefix/lib/restore-swift-runtime.txt"
missing="$(cd "$work/python/restore" && LD_LIBRARY_PATH= ldd libRestore.so libRestoreImageIO.so | grep "not found" || true)"
[[ -z "$missing" ]] || { echo "error: unresolved libraries: $missing" >&2; exit 1; }

"$python" -m pip wheel --no-deps --wheel-dir "$dist" "$work/python"
ls "$dist"/restore-*.whl
