#!/usr/bin/env python3
"""Times one ONNX model in onnxruntime and prints one JSON line, like `rrun bench --json`.

Output: {"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}
Each --shape is one graph input, in order; inputs are uniform random in 0..1 from a
fixed seed. The session uses `--threads` intra-op threads, one inter-op thread and
ORT_ENABLE_ALL, so it is compared with Restore on equal terms.

Usage: .venv/bin/python scripts/bench/ort_worker.py MODEL.onnx --shape 1,3,512,512 --runs 10 --warmup 2 --threads 2 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

from shapes import parse_shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--shape", action="append", type=parse_shape, required=True, help="one per graph input, in order")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    graph_inputs = session.get_inputs()
    if len(graph_inputs) != len(args.shape):
        sys.exit(f"{args.model}: {len(graph_inputs)} inputs ({[i.name for i in graph_inputs]}) but {len(args.shape)} --shape given")
    rng = np.random.default_rng(args.seed)
    feeds = {value.name: rng.random(shape, dtype=np.float32) for value, shape in zip(graph_inputs, args.shape)}

    for _ in range(args.warmup):
        session.run(None, feeds)
    times_ms = []
    for _ in range(args.runs):
        started = time.perf_counter()
        session.run(None, feeds)
        times_ms.append((time.perf_counter() - started) * 1000)

    # Linux reports ru_maxrss in kilobytes.
    peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"median_ms": statistics.median(times_ms), "times_ms": times_ms, "peak_rss_bytes": peak_rss_bytes}
    if not args.json:
        print(f"onnxruntime {ort.__version__}: median {result['median_ms']:.2f} ms over {args.runs} runs", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
