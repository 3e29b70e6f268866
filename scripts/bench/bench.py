#!/usr/bin/env python3
"""Benchmarks Restore against its peers, onnxruntime and OpenVINO, on the same model and input shape.

Each round starts one fresh process per engine — `rrun bench MODEL.rgraph ... --json`,
`ort_worker.py MODEL.onnx ... --json` and `openvino_worker.py MODEL.onnx ... --json` —
reversing their order every other round so none always runs on a cooler or quieter
machine. All print {"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}. The
driver pools the per-run times of all rounds, takes medians, and reads each process's
peak RSS from the kernel (wait4's ru_maxrss), which covers everything the process mapped,
including the model. GFLOP/s use the Conv/ConvTranspose/Gemm/MatMul count of flops.py.

With --whole-command, each round also times `--whole-runs` whole `rrun MODEL X.npy -o
OUT.npy` commands (process start, load, plan, one run, write) by wall clock: what a user
waits for, to compare with the peers' warm inference alone.

Usage:
  .venv/bin/python scripts/bench/bench.py MODEL.onnx --rgraph MODEL.rgraph [--shape 1,3,512,512 ...]
        [--rounds 5] [--runs 10] [--warmup 2] [--threads 2] [--rrun PATH] [--peers onnxruntime,openvino[,openvino-avx2]]
        [--whole-command [--whole-runs 3]] [--peers-only] [--json]
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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


# The peers and their workers; the name is what the table and the ratios say.
# `openvino-avx2` is OpenVINO with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA, which its
# CPU plugin honours: oneDNN's verbose log then says `isa:Intel AVX2`): the same-ISA peer
# for rows of Restore's AVX2 path measured on an AVX-512 machine (RESTORE_CPU=avx2).
# onnxruntime has no such switch; its rows use the best kernels of the machine.
PEER_WORKERS = {"onnxruntime": "ort_worker.py", "openvino": "openvino_worker.py",
                "openvino-avx2": "openvino_worker.py"}
PEER_NAMES = {"onnxruntime": "onnxruntime", "openvino": "OpenVINO", "openvino-avx2": "OpenVINO AVX2"}
PEER_ENVIRONMENT = {"openvino-avx2": ["ONEDNN_MAX_CPU_ISA=AVX2"]}
WHOLE_COMMAND = "Restore whole command"


def run_process(command: list[str]) -> tuple[str, int, float]:
    """Runs `command`; returns its stdout, its peak RSS in bytes and its wall time in ms.

    stdout goes to a file rather than a pipe so the driver can reap the child itself
    with wait4 and read that child's own resource usage.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall_ms = (time.perf_counter() - started) * 1000
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output = stdout.read().decode()
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.read().decode()}{output}")
    # Linux reports ru_maxrss in kilobytes.
    return output, usage.ru_maxrss * 1024, wall_ms


def run_measured(command: list[str]) -> tuple[dict, int]:
    """Runs a worker `command`; returns its parsed JSON line and its peak RSS in bytes."""
    output, peak_rss, _ = run_process(command)
    json_lines = [line for line in output.splitlines() if line.startswith("{")]
    if not json_lines:
        sys.exit(f"{' '.join(command)} printed no JSON line:\n{output}")
    return json.loads(json_lines[-1]), peak_rss


def whole_command(rrun: str, model: onnx.ModelProto, rgraph: str, shapes: list[list[int]], threads: int,
                  folder: Path) -> list[str]:
    """`rrun RGRAPH X.npy [NAME=Y.npy ...] -o OUT.npy --threads N` on random inputs (uniform 0..1,
    seed 0) written to `folder`, one per graph input in order."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    names = [value.name for value in model.graph.input if value.name not in initializers]
    if len(names) != len(shapes):
        sys.exit(f"the model has {len(names)} inputs ({names}) but {len(shapes)} --shape given")
    rng = np.random.default_rng(0)
    arguments = []
    for index, (name, shape) in enumerate(zip(names, shapes)):
        path = folder / f"input_{index}.npy"
        np.save(path, rng.random(shape, dtype=np.float32))
        arguments.append(str(path) if index == 0 else f"{name}={path}")
    return [rrun, rgraph, *arguments, "-o", str(folder / "output.npy"), "--threads", str(threads)]


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
    parser.add_argument("--peers", default="onnxruntime,openvino",
                        help="comma-separated peers to measure beside Restore: onnxruntime, openvino (default both), "
                             "openvino-avx2 (OpenVINO capped at AVX2 kernels)")
    parser.add_argument("--peers-only", "--ort-only", action="store_true",
                        help="measure the peers alone (no Restore build needed)")
    parser.add_argument("--whole-command", action="store_true",
                        help="also time whole `rrun MODEL X.npy -o OUT.npy` commands (wall clock, fresh process each)")
    parser.add_argument("--whole-runs", type=int, default=3, help="whole commands per round with --whole-command")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()
    shapes = args.shape or [[1, 3, 512, 512]]
    if not args.peers_only and not args.rgraph:
        parser.error("--rgraph is required unless --peers-only")
    peers = [peer.strip() for peer in args.peers.split(",") if peer.strip()]
    if unknown := [peer for peer in peers if peer not in PEER_WORKERS]:
        parser.error(f"unknown peer {unknown}: choose from {sorted(PEER_WORKERS)}")
    model = onnx.load(args.model)

    shape_flags = [flag for shape in shapes for flag in ("--shape", ",".join(map(str, shape)))]
    timing_flags = ["--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"]
    engines: dict[str, list[str]] = {
        # `env` execs the worker in its own process, so wait4 still reads the worker's peak RSS.
        PEER_NAMES[peer]: ["env", *PEER_ENVIRONMENT.get(peer, []), sys.executable, str(SCRIPTS / PEER_WORKERS[peer]),
                           args.model, *shape_flags, *timing_flags]
        for peer in peers
    }
    if not args.peers_only:
        engines["Restore"] = [find_rrun(args.rrun), "bench", args.rgraph, *shape_flags, *timing_flags]

    results = {name: EngineResult(name) for name in engines}
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as scratch:
        whole = None
        if args.whole_command and not args.peers_only:
            whole = whole_command(find_rrun(args.rrun), model, args.rgraph, shapes, args.threads, Path(scratch))
            results[WHOLE_COMMAND] = EngineResult(WHOLE_COMMAND)
        order = list(engines) + ([WHOLE_COMMAND] if whole else [])
        for round_index in range(args.rounds):
            for name in order if round_index % 2 == 0 else reversed(order):
                if name == WHOLE_COMMAND:
                    for _ in range(args.whole_runs):
                        _, peak_rss, wall_ms = run_process(whole)
                        results[name].times_ms.append(wall_ms)
                        results[name].peak_rss_bytes = max(results[name].peak_rss_bytes, peak_rss)
                    median = statistics.median(results[name].times_ms[-args.whole_runs:])
                else:
                    report, peak_rss = run_measured(engines[name])
                    results[name].times_ms.extend(report["times_ms"])
                    results[name].peak_rss_bytes = max(results[name].peak_rss_bytes, peak_rss)
                    median = report["median_ms"]
                print(f"round {round_index + 1}/{args.rounds} {name:21s} median {median:9.2f} ms  peak RSS {peak_rss / 2**20:7.1f} MiB", flush=True)

    flops = count_flops(model, shapes)
    shape_text = " ".join("x".join(map(str, s)) for s in shapes)
    print(f"\nmodel {args.model}, input {shape_text}, {flops / 1e9:.2f} GFLOP (Conv/ConvTranspose/Gemm/MatMul, 2·MACs)")
    print(f"{args.threads} threads, {args.rounds} rounds × {args.runs} runs (+{args.warmup} warm-up) per engine"
          + (f", {args.whole_runs} whole commands per round" if WHOLE_COMMAND in results else ""))
    print(f"{'engine':21s} {'median ms':>10s} {'min ms':>9s} {'peak RSS MiB':>13s} {'GFLOP/s':>8s}")
    for result in results.values():
        gflops = flops / (result.median_ms / 1000) / 1e9
        print(f"{result.name:21s} {result.median_ms:10.2f} {min(result.times_ms):9.2f} {result.peak_rss_bytes / 2**20:13.1f} {gflops:8.1f}")
    ratios = {f"{restore}/{PEER_NAMES[peer]}": results[restore].median_ms / results[PEER_NAMES[peer]].median_ms
              for restore in ("Restore", WHOLE_COMMAND) if restore in results for peer in peers}
    for label, value in ratios.items():
        print(f"ratio {label} (median time): {value:.3f}")
    print(f"commit {git_commit()}, {cpu_name()}, {os.cpu_count()} logical CPUs, load average "
          + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    ratio = ratios.get("Restore/onnxruntime")

    if args.json:
        summary = {
            "model": args.model,
            "shapes": shapes,
            "gflop": flops / 1e9,
            "threads": args.threads,
            "ratio": ratio,
            "ratios": ratios,
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
