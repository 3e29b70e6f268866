#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test —
# the Swift suites (XCTest), then libRestore from C and from Python (scripts/test-capi.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# pytest needs numpy and pytest: the system's Python when it has them, else a venv here.
python=python3
if ! python3 -c "import numpy, pytest" 2>/dev/null; then
  [ -x .build-python/bin/python ] || python3 -m venv .build-python
  .build-python/bin/python -m pip install -q numpy pytest
  python=.build-python/bin/python
fi
# -Xcc -O2: the C kernels (CKernels) at -O0 run ~20× slower on CPUs with AVX-512, where the
# tests exercise them; Package.swift carries no unsafeFlags, so the flag is given here.
swift build --build-tests -Xcc -O2
swift test --skip-build --disable-swift-testing
PYTHON="$python" scripts/test-capi.sh
