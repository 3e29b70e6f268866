#!/usr/bin/env python3
"""Writes a benchmark model: DnCNN (default), a small ViT restorer or BigGAN-deep.

- dncnn: 17 conv layers × 64 features with dynamic H/W, random BatchNorm statistics
  (folded into the convolutions by the exporter); 2.2 MB.
- vit-restorer: an image-to-image ViT at a fixed 128×128: 8×8 patches (a stride-8 conv) to
  256 tokens of dimension 192 plus learned positions, 6 pre-norm blocks (3 heads of 64,
  attention written as transformers' ViT writes it, MLP 768 with exact GELU), a final
  LayerNorm and a linear back to 8×8×3 pixels per token; 11 MB.
- biggan-deep: pytorch-pretrained-biggan's `BigGAN` at 128×128 with channel width 64
  (the biggan-deep-128 layout at half width: attention over 64×64 = 4096 positions
  against 1024 pooled ones, gamma 0.7), truncation 0.4, spectral norms converged,
  batch-norm statistics and the final batch norm's scale and shift set so that the image
  is finite and not saturated; inputs z [1, 128] and class_vector [1, 1000]; 100 MB.

Random weights (fixed seed), exported with opset 17 by the TorchScript exporter. Generated
on demand rather than committed.

Usage: .venv/bin/python scripts/bench/make_bench_model.py [--model dncnn|vit-restorer|biggan-deep]
       [-o OUT.onnx] [--features 64] [--depth 17]
(default OUT.onnx: restore-bench/<model>.onnx in the temporary directory, $TMPDIR or /tmp)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from common import DnCNN, export_onnx, format_histogram, op_histogram, randomise_batchnorm_statistics, seed_everything  # noqa: E402

SEED = 17


class ViTBlock(nn.Module):
    """Pre-norm transformer block; attention as matmul, scale, softmax, matmul."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        attended = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(attended)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class ViTRestorer(nn.Module):
    def __init__(self, size: int = 128, patch: int = 8, dim: int = 192, depth: int = 6, heads: int = 3) -> None:
        super().__init__()
        self.size, self.patch = size, patch
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, (size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3 * patch * patch)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(image).flatten(2).transpose(1, 2) + self.position
        pixels = self.head(self.norm(self.blocks(tokens)))
        side = self.size // self.patch
        pixels = pixels.reshape(1, side, side, 3, self.patch, self.patch).permute(0, 3, 1, 4, 2, 5)
        return pixels.reshape(1, 3, self.size, self.size)


class BigGANAtTruncation(nn.Module):
    def __init__(self, model: nn.Module, truncation: float) -> None:
        super().__init__()
        self.model, self.truncation = model, truncation

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        return self.model(z, class_vector, self.truncation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["dncnn", "vit-restorer", "biggan-deep"], default="dncnn")
    parser.add_argument("-o", "--output", type=Path,
                        help="ONNX file to write (default: restore-bench/<model>.onnx in the temporary directory)")
    parser.add_argument("--features", type=int, default=64, help="dncnn only")
    parser.add_argument("--depth", type=int, default=17, help="dncnn only")
    args = parser.parse_args()
    output = args.output or Path(tempfile.gettempdir()) / "restore-bench" / f"{args.model}.onnx"

    seed_everything(SEED)
    if args.model == "dncnn":
        model = DnCNN(channels=3, features=args.features, depth=args.depth)
        randomise_batchnorm_statistics(model, torch.Generator().manual_seed(SEED))
        exported = export_onnx(model, (torch.rand(1, 3, 64, 64),), output, ["image"], ["correction"], ["image"])
    elif args.model == "vit-restorer":
        exported = export_onnx(ViTRestorer().eval(), (torch.rand(1, 3, 128, 128),), output, ["image"], ["restored"], [])
    else:
        from pytorch_pretrained_biggan import BigGAN, BigGANConfig

        from make_checkpoints import set_biggan_statistics_as_trained

        model = BigGAN(BigGANConfig(output_dim=128, channel_width=64)).eval()
        set_biggan_statistics_as_trained(model, torch.Generator().manual_seed(SEED))
        z = torch.randn(1, 128) * 0.4
        classes = torch.softmax(torch.randn(1, 1000), dim=1)
        exported = export_onnx(BigGANAtTruncation(model, 0.4), (z, classes), output, ["z", "class_vector"], ["image"], [])
        with torch.no_grad():
            image = model(torch.randn(1, 128) * 0.5, classes, 0.4)
        print(f"image on z ~ N(0, 0.5²): mean {image.mean():.4f} std {image.std():.4f}, "
              f"|image| > 0.99: {(image.abs() > 0.99).float().mean():.3f}, finite: {bool(image.isfinite().all())}")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    print(f"ops: {format_histogram(op_histogram(exported))}")


if __name__ == "__main__":
    main()
