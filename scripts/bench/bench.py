#!/usr/bin/env python3
"""Benchmarks Restore against onnxruntime on the same model and input shape.

Each round starts one fresh process per engine — `rrun bench MODEL.rgraph ... --json`
and `ort_worker.py MODEL.onnx ... --json` — alternating which goes first so neither
always runs on a cooler or quieter machine. Both print
{"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}. The driver pools the
per-run times of all rounds, takes medians, and reads each process's peak RSS from the
kernel (wait4's ru_maxrss), which covers everything the process mapped, including the
model. GFLOP/s use the Conv/ConvTranspose/Gemm/MatMul count of flops.py.

Usage:
  .venv/bin/python scripts/bench/bench.py MODEL.onnx --rgraph MODEL.rgraph [--shape 1,3,512,512 ...]
        [--rounds 5] [--runs 10] [--warmup 2] [--threads 2] [--rrun PATH] [--ort-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from flops import count_flops
from shapes import parse_shape

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parents[1]


@dataclass
class EngineResult:
    """Everything measured for one engine over all rounds."""

    name: str
    times_ms: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def run_measured(command: list[str]) -> tuple[dict, int]:
    """Runs `command`, returns its parsed JSON line and its peak RSS in bytes.

    stdout goes to a file rather than a pipe so the driver can reap the child itself
    with wait4 and read that child's own resource usage.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output = stdout.read().decode()
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.read().decode()}{output}")
    json_lines = [line for line in output.splitlines() if line.startswith("{")]
    if not json_lines:
        sys.exit(f"{' '.join(command)} printed no JSON line:\n{output}")
    # Linux reports ru_maxrss in kilobytes.
    return json.loads(json_lines[-1]), usage.ru_maxrss * 1024


def find_rrun(explicit: str | None) -> str:
    """The rrun executable: --rrun, else the release then debug build, else PATH."""
    if explicit:
        return explicit
    for candidate in (REPO / ".build" / "release" / "rrun", REPO / ".build" / "debug" / "rrun"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("rrun")
    if found is None:
        sys.exit("rrun not found: build it (swift build -c release) or pass --rrun PATH")
    return found


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit() -> str:
    """Short hash of the checked-out commit, with `+dirty` when the tree has changes."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the ONNX model (onnxruntime side, and the FLOP count)")
    parser.add_argument("--rgraph", help="the converted model for Restore")
    parser.add_argument("--shape", action="append", type=parse_shape, help="one per graph input, in order (default 1,3,512,512)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per engine")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rrun", help="path of the rrun executable")
    parser.add_argument("--ort-only", action="store_true", help="measure onnxruntime alone (no Restore build needed)")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()
    shapes = args.shape or [[1, 3, 512, 512]]
    if not args.ort_only and not args.rgraph:
        parser.error("--rgraph is required unless --ort-only")

    shape_flags = [flag for shape in shapes for flag in ("--shape", ",".join(map(str, shape)))]
    timing_flags = ["--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"]
    engines: dict[str, list[str]] = {
        "onnxruntime": [sys.executable, str(SCRIPTS / "ort_worker.py"), args.model, *shape_flags, *timing_flags],
    }
    if not args.ort_only:
        engines["Restore"] = [find_rrun(args.rrun), "bench", args.rgraph, *shape_flags, *timing_flags]

    results = {name: EngineResult(name) for name in engines}
    order = list(engines)
    for round_index in range(args.rounds):
        for name in order if round_index % 2 == 0 else reversed(order):
            report, peak_rss = run_measured(engines[name])
            results[name].times_ms.extend(report["times_ms"])
            results[name].peak_rss_bytes = max(results[name].peak_rss_bytes, peak_rss)
            print(f"round {round_index + 1}/{args.rounds} {name:12s} median {report['median_ms']:9.2f} ms  peak RSS {peak_rss / 2**20:7.1f} MiB", flush=True)

    flops = count_flops(onnx.load(args.model), shapes)
    shape_text = " ".join("x".join(map(str, s)) for s in shapes)
    print(f"\nmodel {args.model}, input {shape_text}, {flops / 1e9:.2f} GFLOP (Conv/ConvTranspose/Gemm/MatMul, 2·MACs)")
    print(f"{args.threads} threads, {args.rounds} rounds × {args.runs} runs (+{args.warmup} warm-up) per engine")
    print(f"{'engine':12s} {'median ms':>10s} {'min ms':>9s} {'peak RSS MiB':>13s} {'GFLOP/s':>8s}")
    for result in results.values():
        gflops = flops / (result.median_ms / 1000) / 1e9
        print(f"{result.name:12s} {result.median_ms:10.2f} {min(result.times_ms):9.2f} {result.peak_rss_bytes / 2**20:13.1f} {gflops:8.1f}")
    ratio = results["Restore"].median_ms / results["onnxruntime"].median_ms if "Restore" in results else None
    if ratio is not None:
        print(f"ratio Restore/onnxruntime (median time): {ratio:.3f}")
    print(f"commit {git_commit()}, {cpu_name()}, {os.cpu_count()} logical CPUs")

    if args.json:
        summary = {
            "model": args.model,
            "shapes": shapes,
            "gflop": flops / 1e9,
            "threads": args.threads,
            "ratio": ratio,
            "commit": git_commit(),
            "cpu": cpu_name(),
            "engines": {
                r.name: {"median_ms": r.median_ms, "peak_rss_bytes": r.peak_rss_bytes, "gflops": flops / (r.median_ms / 1000) / 1e9}
                for r in results.values()
            },
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
