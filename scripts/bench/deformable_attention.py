#!/usr/bin/env python3
"""Benchmarks multi-scale deformable attention fused vs unfused.

Exports the pure-PyTorch form (scripts/fixtures/vit_adapter.py's
`deformable_attention_core`: value split per level, one grid_sample per level, weights,
sum) at the size of Mask2Former-Swin-T's pixel-decoder layers at 224×320 (levels 28×40,
14×20, 7×10; 8 heads of 32 channels; 4 points; every token a query), converts it twice —
as `convert` does (one `deformableAttention` node) and with `--no-fusion
deformable-attention` (the per-level gridSamples, transposes and reductions) — and runs
scripts/bench/bench.py on each against onnxruntime. Inputs are uniform 0…1, as
locations and weights are.

Usage: .venv/bin/python scripts/bench/deformable_attention.py [--out DIR] [--rounds N] [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "fixtures"))
from vit_adapter import deformable_attention_core  # noqa: E402

LEVELS = [(28, 40), (14, 20), (7, 10)]
HEADS, WIDTH, POINTS = 8, 32, 4


class DeformableAttentionCore(nn.Module):
    def forward(self, value, locations, weights):
        return deformable_attention_core(value, LEVELS, locations, weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "restore-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bin", type=Path, default=REPO / ".build" / "release", help="folder of convert and rrun")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tokens = sum(h * w for h, w in LEVELS)
    shapes = [(1, tokens, HEADS, WIDTH), (1, tokens, HEADS, len(LEVELS), POINTS, 2), (1, tokens, HEADS, len(LEVELS), POINTS)]
    model = args.out / "deformable_attention.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(DeformableAttentionCore(), tuple(torch.rand(s) for s in shapes), str(model), dynamo=False,
                          opset_version=17, input_names=["value", "locations", "weights"], output_names=["output"])
    print(f"{model}: value {shapes[0]}, locations {shapes[1]}, weights {shapes[2]}")
    shape_args = [argument for shape in shapes for argument in ("--shape", ",".join(map(str, shape)))]
    for label, extra in [("fused", []), ("unfused", ["--no-fusion", "deformable-attention"])]:
        rgraph = args.out / f"deformable_attention_{label}.rgraph"
        subprocess.run([str(args.bin / "convert"), str(model), "-o", str(rgraph), *extra], check=True)
        print(f"== Restore {label} vs onnxruntime", flush=True)
        subprocess.run([sys.executable, str(REPO / "scripts" / "bench" / "bench.py"), str(model), "--rgraph", str(rgraph),
                        *shape_args, "--rounds", str(args.rounds), "--runs", str(args.runs), "--warmup", "3",
                        "--threads", "2", "--rrun", str(args.bin / "rrun")], check=True)


if __name__ == "__main__":
    main()
