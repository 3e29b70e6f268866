#!/usr/bin/env python3
"""Runs ONNX's node test cases (written by generate.py) through Restore and classifies each.

Every case runs out of process — `convert model.onnx`, then `rrun model.rgraph input_0.npy
--outputs DIR` — so a crash is recorded, not suffered. A case is
- pass: every output has the reference's shape and matches it within the case's own
  tolerance (ONNX's backend-test criterion: |a - b| <= atol + rtol·|b|, NaN where NaN is);
- wrong: Restore produced an output that differs (shape or values) — a bug;
- crash: convert or rrun died on a signal or exited with neither success nor an error message;
- refused: convert or rrun exited 1 with a message (the reason, printed grouped).

Usage: run.py CASES BIN [--jobs N] [--results FILE] [--min-pass N]
Exits 1 when any case is wrong or crashes, or fewer than --min-pass pass.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

TIMEOUT = 120


def first_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def compare(case_dir, spec, out_dir):
    """None when every output matches, else what differs."""
    for index, name in enumerate(spec["outputs"]):
        expected = np.load(os.path.join(case_dir, f"output_{index}.npy"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = os.path.join(out_dir, safe + ".npy")
        if not os.path.exists(path):
            return f"output '{name}' not written"
        actual = np.load(path)
        if actual.shape != expected.shape:
            return f"output '{name}' has shape {list(actual.shape)}, expected {list(expected.shape)}"
        actual = actual.astype(np.float64)
        reference = expected.astype(np.float64)
        if not np.array_equal(np.isnan(actual), np.isnan(reference)):
            return f"output '{name}': NaN where the reference has none (or the reverse)"
        finite = ~np.isnan(reference)
        with np.errstate(invalid="ignore"):
            error = np.abs(actual[finite] - reference[finite])
            error[np.isinf(reference[finite]) & (actual[finite] == reference[finite])] = 0
            bound = spec["atol"] + spec["rtol"] * np.abs(reference[finite])
        if error.size and not np.all(error <= bound):
            worst = int(np.argmax(error - bound))
            return (f"output '{name}': max abs error {np.max(error):.3g} "
                    f"(reference {reference[finite][worst]:.6g}, Restore {actual[finite][worst]:.6g})")
    return None


def run_case(case_dir, bin_dir):
    name = os.path.basename(case_dir)
    with open(os.path.join(case_dir, "case.json")) as file:
        spec = json.load(file)
    with tempfile.TemporaryDirectory(prefix="restore-conformance-") as work:
        model = os.path.join(work, "model.rgraph")
        steps = [
            ("convert", [os.path.join(bin_dir, "convert"), os.path.join(case_dir, "model.onnx"), "-o", model]),
            ("rrun", [os.path.join(bin_dir, "rrun"), model, os.path.join(case_dir, "input_0.npy"),
                      "--outputs", os.path.join(work, "out")]),
        ]
        for tool, command in steps:
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                return name, "crash", f"{tool} took more than {TIMEOUT} s"
            if result.returncode < 0:
                return name, "crash", f"{tool} died on signal {-result.returncode}: {first_line(result.stderr)}"
            if result.returncode != 0:
                message = first_line(result.stderr)
                if result.returncode != 1 or not message:
                    return name, "crash", f"{tool} exited {result.returncode}: {message}"
                return name, "refused", f"{tool}: {message}"
        problem = compare(case_dir, spec, os.path.join(work, "out"))
        if problem:
            return name, "wrong", problem
        return name, "pass", "matches onnxruntime where ONNX's reference differs" if spec["reference"] == "onnxruntime" else ""


def reason_group(reason):
    """A refusal's reason without the case-specific file and node names, for grouping."""
    reason = re.sub(r"^(convert|rrun): [^:]*model\.(onnx|rgraph): ", r"\1: ", reason)
    reason = re.sub(r"\(([A-Za-z0-9_]+)\)", "", reason)
    reason = re.sub(r"'[^']*'", "'…'", reason)
    reason = re.sub(r"\d+", "N", reason)
    return reason[:150]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("bin")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", help="write one line per case: name, outcome, reason (tab-separated)")
    parser.add_argument("--min-pass", type=int, default=0)
    parser.add_argument("--filter", default="", help="only cases whose name matches this regular expression")
    args = parser.parse_args()

    cases = sorted(os.path.join(args.cases, name) for name in os.listdir(args.cases)
                   if re.search(args.filter, name) and os.path.exists(os.path.join(args.cases, name, "case.json")))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda case: run_case(case, args.bin), cases))

    counts = collections.Counter(outcome for _, outcome, _ in results)
    for name, outcome, reason in results:
        if outcome in ("wrong", "crash"):
            print(f"{outcome.upper()} {name}: {reason}")
    refusals = collections.Counter(reason_group(reason) for _, outcome, reason in results if outcome == "refused")
    if refusals:
        print("refusals by reason:")
        for reason, count in refusals.most_common():
            print(f"  {count:4d}  {reason}")
    if args.results:
        with open(args.results, "w") as file:
            for name, outcome, reason in results:
                file.write(f"{name}\t{outcome}\t{reason}\n")
    against_runtime = sum(1 for _, outcome, reason in results if outcome == "pass" and reason)
    if against_runtime:
        print(f"{against_runtime} of the passes match onnxruntime where ONNX's reference differs "
              "(scripts/conformance/reference_disagreements.json)")
    print(f"ONNX node conformance: {counts['pass']} of {len(results)} pass, {counts['wrong']} wrong, "
          f"{counts['crash']} crash, {counts['refused']} refused")
    failed = counts["wrong"] or counts["crash"] or counts["pass"] < args.min_pass
    if counts["pass"] < args.min_pass:
        print(f"fewer passes than the recorded {args.min_pass}: a regression")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
