"""What the peer workers (ort_worker.py, openvino_worker.py) share: their command line,
the random inputs and the timing loop, so both engines are timed exactly alike and print
the JSON line `rrun bench --json` prints:
{"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Callable

import numpy as np

from shapes import parse_shape


def parse_worker_arguments(description: str) -> argparse.Namespace:
    """The flags every worker takes (the same as `rrun bench`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model")
    parser.add_argument("--shape", action="append", type=parse_shape, required=True, help="one per graph input, in order")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser.parse_args()


def random_inputs(names: list[str], arguments: argparse.Namespace) -> dict[str, np.ndarray]:
    """Uniform 0..1 float32 inputs of the given shapes from a fixed seed, by input name."""
    if len(names) != len(arguments.shape):
        sys.exit(f"{arguments.model}: {len(names)} inputs ({names}) but {len(arguments.shape)} --shape given")
    rng = np.random.default_rng(arguments.seed)
    return {name: rng.random(shape, dtype=np.float32) for name, shape in zip(names, arguments.shape)}


def time_and_report(engine: str, run: Callable[[], object], arguments: argparse.Namespace) -> None:
    """Runs `run` --warmup times untimed and --runs times timed, then prints the JSON line
    (peak RSS from the kernel, so model loading counts)."""
    for _ in range(arguments.warmup):
        run()
    times_ms = []
    for _ in range(arguments.runs):
        started = time.perf_counter()
        run()
        times_ms.append((time.perf_counter() - started) * 1000)
    # Linux reports ru_maxrss in kilobytes.
    peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"median_ms": statistics.median(times_ms), "times_ms": times_ms, "peak_rss_bytes": peak_rss_bytes}
    if not arguments.json:
        print(f"{engine}: median {result['median_ms']:.2f} ms over {arguments.runs} runs", file=sys.stderr)
    print(json.dumps(result))
