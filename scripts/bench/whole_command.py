#!/usr/bin/env python3
"""Times the whole `rrun` command against onnxruntime's inference alone, and checks its outputs.

Each round runs, in alternating order, `rrun MODEL.rgraph X.npy --outputs DIR --threads T`
as a fresh process (wall time: load the .rgraph, plan, run once, write every output as
.npy) and scripts/bench/ort_worker.py on the ONNX model (`--warmup` untimed runs, then the
median of `--runs` warm inferences: onnxruntime's inference alone, 2 intra-op threads,
ORT_ENABLE_ALL). The load average is printed beside every round, since the machine may be
shared. At the end: median whole command / median onnxruntime inference, and each output
rrun wrote against the reference given by --expect (max abs error and that error over the
reference's largest magnitude, as the parity tests print).

Usage:
  .venv/bin/python scripts/bench/whole_command.py MODEL.onnx --rgraph MODEL.rgraph --input X.npy
        [--expect NAME=REF.npy ...] [--rounds 3] [--runs 5] [--warmup 2] [--threads 2] [--rrun PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import find_rrun, git_commit, run_measured

SCRIPTS = Path(__file__).resolve().parent


def load() -> str:
    return "load " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def whole_command(rrun: str, rgraph: str, x: str, outputs: Path, threads: int) -> tuple[float, int]:
    """Wall seconds and peak RSS of one `rrun MODEL X.npy --outputs DIR`."""
    started = time.perf_counter()
    process = subprocess.Popen([rrun, rgraph, x, "--outputs", str(outputs), "--threads", str(threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"rrun failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the ONNX model onnxruntime runs")
    parser.add_argument("--rgraph", required=True)
    parser.add_argument("--input", required=True, help="X.npy, the model's one input")
    parser.add_argument("--expect", action="append", default=[], help="NAME=REF.npy: compare rrun's output NAME")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="timed onnxruntime runs per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rrun")
    args = parser.parse_args()
    rrun = find_rrun(args.rrun)
    shape = ",".join(map(str, np.load(args.input).shape))
    restore_s: list[float] = []
    ort_ms: list[float] = []
    restore_rss = ort_rss = 0
    with tempfile.TemporaryDirectory() as scratch:
        outputs = Path(scratch)
        for round_index in range(args.rounds):
            order = ["restore", "ort"] if round_index % 2 == 0 else ["ort", "restore"]
            for engine in order:
                if engine == "restore":
                    seconds, rss = whole_command(rrun, args.rgraph, args.input, outputs, args.threads)
                    restore_s.append(seconds)
                    restore_rss = max(restore_rss, rss)
                    print(f"round {round_index + 1}: rrun whole command {seconds * 1000:.0f} ms ({load()})", flush=True)
                else:
                    result, rss = run_measured([sys.executable, str(SCRIPTS / "ort_worker.py"), args.model, "--shape", shape,
                                                "--runs", str(args.runs), "--warmup", str(args.warmup),
                                                "--threads", str(args.threads), "--json"])
                    ort_ms.append(result["median_ms"])
                    ort_rss = max(ort_rss, rss)
                    print(f"round {round_index + 1}: onnxruntime inference median {result['median_ms']:.0f} ms "
                          f"(min {min(result['times_ms']):.0f}; {load()})", flush=True)
        for expectation in args.expect:
            name, reference = expectation.split("=", 1)
            actual = np.load(outputs / f"{name}.npy").astype(np.float64)
            expected = np.load(reference).astype(np.float64)
            if actual.shape != expected.shape:
                sys.exit(f"{name}: rrun wrote {actual.shape}, the reference is {expected.shape}")
            max_abs = float(np.max(np.abs(actual - expected)))
            print(f"{name} {list(actual.shape)}: max abs error {max_abs:.3g}, relative {max_abs / max(np.max(np.abs(expected)), 1e-12):.3g}")
    whole = statistics.median(restore_s) * 1000
    inference = statistics.median(ort_ms)
    print(f"whole rrun command median {whole:.0f} ms (peak RSS {restore_rss / 2**20:.0f} MiB) vs onnxruntime inference "
          f"median {inference:.0f} ms (peak RSS {ort_rss / 2**20:.0f} MiB): ratio {whole / inference:.2f}; "
          f"{args.threads} threads, commit {git_commit()}")


if __name__ == "__main__":
    main()
