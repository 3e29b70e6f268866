#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test —
# the Swift suites (XCTest), then libRestore from C and from Python (scripts/test-capi.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
# pytest needs numpy and pytest; the ONNX conformance run needs the pinned onnx (its node
# cases) and onnxruntime (the reference where ONNX's own disagrees); restore.distributed's
# test needs ray (a local cluster, ~40 s) and fsspec (its input lists): a venv here has them.
python=.build-python/bin/python
pinned=(numpy pytest onnx==1.23.2 onnxruntime==1.32.0 ray==2.60.0 fsspec==2026.9.0)
if ! "$python" -c "import numpy, pytest, onnx, onnxruntime, ray, fsspec; assert onnx.__version__ == '1.23.2'" 2>/dev/null; then
  [ -x "$python" ] || python3 -m venv .build-python
  "$python" -m pip install -q "${pinned[@]}"
fi
# -Xcc -O2: the C kernels (CKernels) at -O0 run ~20× slower on CPUs with AVX-512, where the
# tests exercise them; Package.swift carries no unsafeFlags, so the flag is given here.
swift build --build-tests -Xcc -O2
swift test --skip-build --disable-swift-testing
PYTHON="$python" scripts/test-capi.sh
# ONNX's own node tests, converted and run out of process (scripts/conformance/run.py):
# any wrong answer or crash fails, and so does passing fewer cases than recorded.
"$python" scripts/conformance/check_versions.py
"$python" scripts/conformance/generate.py .build/onnx-node-cases
"$python" scripts/conformance/run.py .build/onnx-node-cases .build/debug \
  --min-pass "$(cat scripts/conformance/minimum-pass)"
# Every libFuzzer target over its committed corpus and 2000 mutations (fuzz/README.md):
# a reader change that brings back a crash, leak or hang fails here.
scripts/fuzz.sh smoke 2000
