#!/usr/bin/env python3
"""Writes the plain-ViT benchmark models (random weights, not committed).

- `vit_restorer.onnx`: a small ViT restorer in the ViT-GAN generator's shape: 8×8 patches
  embedded by a stride-8 conv to 192 channels, a learned position table, 6 pre-norm blocks
  (3 heads of 64, MLP 768, GELU), a final LayerNorm, a linear layer to 8·8·3 values per
  patch and a pixel shuffle back to the image; fixed 1×3×128×128.
- `vit_s16.onnx`: transformers `ViTModel`, ViT-S/16 (hidden 384, 12 layers, 6 heads, MLP
  1536) at 1×3×224×224, last hidden state out.

Both: classic exporter, opset 17, seed 0.
Usage: .venv/bin/python scripts/bench/make_vit_models.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers import ViTConfig, ViTModel


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViTRestorer(nn.Module):
    def __init__(self, size: int = 128, patch: int = 8, dim: int = 192, depth: int = 6, heads: int = 3):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.randn(1, (size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.to_pixels = nn.Linear(dim, patch * patch * 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        x = self.embed(image).flatten(2).transpose(1, 2) + self.position
        for block in self.blocks:
            x = block(x)
        x = self.to_pixels(self.norm(x))
        x = x.transpose(1, 2).reshape(b, 3 * self.patch * self.patch, h // self.patch, w // self.patch)
        return nn.functional.pixel_shuffle(x, self.patch)


class LastHiddenState(nn.Module):
    def __init__(self, model: ViTModel):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=image).last_hidden_state


def export(module: nn.Module, shape: tuple[int, ...], path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.rand(shape),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["output"])
    print(f"{path}: {sum(p.numel() for p in module.parameters())} parameters, input {list(shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "restore-bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    export(ViTRestorer(), (1, 3, 128, 128), args.out / "vit_restorer.onnx")
    config = ViTConfig(image_size=224, patch_size=16, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                       intermediate_size=1536, attn_implementation="eager")
    export(LastHiddenState(ViTModel(config, add_pooling_layer=False)), (1, 3, 224, 224), args.out / "vit_s16.onnx")


if __name__ == "__main__":
    main()
