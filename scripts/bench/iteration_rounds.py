"""What the training-iteration benchmarks (dip_iteration.py, dgp_iteration.py) share: reading
the median iteration time that `rrun dip -v` and `rrun dgp -v` print, rounds that alternate
which engine goes first, and the summary they print."""
import json
import os
import re
import statistics
import subprocess

from bench import cpu_name, git_commit


def rrun_iteration_ms(command: list[str]) -> float:
    """Runs one `rrun dip|dgp ... -v` process and returns the median iteration time it prints
    (rrun leaves out the first iteration, which also plans)."""
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"iteration: median ([0-9.]+) ms", output)
    if not match:
        raise SystemExit(f"no iteration time in rrun's output:\n{output}")
    return float(match.group(1))


def alternate_rounds(rounds: int, restore, pytorch) -> tuple[list[float], list[float], list[float]]:
    """Calls `restore()` and `pytorch()` once per round, the one that goes first swapped every
    other round so neither always meets a cooler or quieter machine; returns each engine's
    per-round times and the 1-minute load average after each round."""
    times = {"restore": [], "pytorch": []}
    loads = []
    for round_index in range(rounds):
        engines = [("restore", restore), ("pytorch", pytorch)]
        if round_index % 2:
            engines.reverse()
        for name, measure in engines:
            times[name].append(measure())
        loads.append(os.getloadavg()[0])
    return times["restore"], times["pytorch"], loads


def print_summary(title: str, restore: list[float], pytorch: list[float], loads: list[float], torch_version: str,
                  as_json: bool, digits: int = 1) -> None:
    """Prints the medians of the rounds' medians, the ratio Restore / PyTorch, the load average per
    round, the commit and the CPU; with `as_json` also one JSON line for BENCHMARKS.md."""
    r, p = statistics.median(restore), statistics.median(pytorch)
    commit, cpu = git_commit(), cpu_name()
    print(title)
    print(f"  Restore  median {r:.{digits}f} ms  (rounds: {', '.join(f'{t:.{digits}f}' for t in restore)})")
    print(f"  PyTorch  median {p:.{digits}f} ms  (rounds: {', '.join(f'{t:.{digits}f}' for t in pytorch)}; torch {torch_version})")
    print(f"  ratio Restore/PyTorch {r / p:.2f}   load average (1 min) per round: {', '.join(f'{l:.1f}' for l in loads)}")
    print(f"  commit {commit}   {cpu}")
    if as_json:
        print(json.dumps({"restore_ms": r, "pytorch_ms": p, "ratio": r / p, "commit": commit, "cpu": cpu, "load": loads}))
