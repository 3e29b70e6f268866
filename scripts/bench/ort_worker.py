#!/usr/bin/env python3
"""Times one ONNX model in onnxruntime and prints one JSON line, like `rrun bench --json`.

Output: {"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}
Each --shape is one graph input, in order; inputs are uniform random in 0..1 from a
fixed seed. The session uses `--threads` intra-op threads, one inter-op thread and
ORT_ENABLE_ALL, so it is compared with Restore on equal terms.

Usage: .venv/bin/python scripts/bench/ort_worker.py MODEL.onnx --shape 1,3,512,512 --runs 10 --warmup 2 --threads 2 --json
"""

from __future__ import annotations

import onnxruntime as ort

from worker_common import parse_worker_arguments, random_inputs, time_and_report


def main() -> None:
    arguments = parse_worker_arguments(__doc__.splitlines()[0])
    options = ort.SessionOptions()
    options.intra_op_num_threads = arguments.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(arguments.model, options, providers=["CPUExecutionProvider"])
    feeds = random_inputs([value.name for value in session.get_inputs()], arguments)
    time_and_report(f"onnxruntime {ort.__version__}", lambda: session.run(None, feeds), arguments)


if __name__ == "__main__":
    main()
