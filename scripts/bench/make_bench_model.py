#!/usr/bin/env python3
"""Writes the benchmark model: a DnCNN (17 conv layers × 64 features) with dynamic H/W.

Random weights (fixed seed) and random BatchNorm statistics, exported with opset 17 by
the TorchScript exporter (BatchNorm is folded into the convolutions by the exporter).
About 2.2 MB, so it is generated on demand rather than committed.

Usage: .venv/bin/python scripts/bench/make_bench_model.py [-o OUT.onnx] [--features 64] [--depth 17]
(default OUT.onnx: restore-bench/dncnn.onnx in the temporary directory, $TMPDIR or /tmp)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from common import DnCNN, export_onnx, format_histogram, op_histogram, randomise_batchnorm_statistics, seed_everything  # noqa: E402

SEED = 17


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(tempfile.gettempdir()) / "restore-bench" / "dncnn.onnx",
                        help="ONNX file to write (default: restore-bench/dncnn.onnx in the temporary directory)")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--depth", type=int, default=17)
    args = parser.parse_args()

    seed_everything(SEED)
    model = DnCNN(channels=3, features=args.features, depth=args.depth)
    randomise_batchnorm_statistics(model, torch.Generator().manual_seed(SEED))
    example = torch.rand(1, 3, 64, 64)
    exported = export_onnx(model, (example,), args.output, ["image"], ["correction"], ["image"])
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    print(f"ops: {format_histogram(op_histogram(exported))}")


if __name__ == "__main__":
    main()
