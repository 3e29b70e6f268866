#!/usr/bin/env python3
"""Writes a PyTorch checkpoint (.pth / .bin) as safetensors, which `convert` reads.

The state dict is taken from under `state_dict` (mmsegmentation and other mmcv-based
checkpoints keep it there beside `meta`, and optimizer state beside that), else `model`,
else the file's top level when that is itself a mapping of names to tensors. A `module.`
prefix that DataParallel adds is removed from every name. Entries that are not tensors
are left out (and listed). Tensors are written contiguous, each with its own storage
(safetensors forbids shared storage, e.g. tied weights).

By default the file is unpickled with torch.load(weights_only=True), which refuses
arbitrary Python objects; --unsafe-load allows them, for a checkpoint from a source you
trust whose metadata holds such objects.

Usage: python scripts/pth_to_safetensors.py CHECKPOINT.pth OUT.safetensors [--unsafe-load]
       (OUT may be a folder: OUT/model.safetensors is written)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file


def state_dict_of(checkpoint: object) -> dict[str, object]:
    """The mapping of names to tensors inside a loaded checkpoint."""
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
        return checkpoint
    raise SystemExit(f"the checkpoint is a {type(checkpoint).__name__}, not a mapping of names to tensors")


def convert(source: Path, destination: Path, unsafe_load: bool = False) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=not unsafe_load)
    tensors, skipped = {}, []
    for name, value in state_dict_of(checkpoint).items():
        if not isinstance(value, torch.Tensor):
            skipped.append(name)
            continue
        tensors[name.removeprefix("module.")] = value.detach().clone().contiguous()
    if not tensors:
        raise SystemExit(f"{source}: no tensors found")
    if destination.is_dir() or destination.suffix != ".safetensors":
        destination.mkdir(parents=True, exist_ok=True)
        destination = destination / "model.safetensors"
    save_file(tensors, destination)
    print(f"{source} → {destination}: {len(tensors)} tensors" + (f"; left out (not tensors): {', '.join(skipped)}" if skipped else ""))
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--unsafe-load", action="store_true", help="unpickle arbitrary objects (trusted files only)")
    args = parser.parse_args()
    convert(args.checkpoint, args.output, args.unsafe_load)


if __name__ == "__main__":
    main()
