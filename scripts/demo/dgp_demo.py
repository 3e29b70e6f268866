#!/usr/bin/env python3
"""The Deep Generative Prior demo of the README: colorization, inpainting and ×4
super-resolution of an image the generator itself made.

No pretrained BigGAN can be fetched here, so the generator is pytorch-pretrained-biggan's
BigGAN-deep with random weights (seed 60) at 128×128 — channel width 16, z 32, 10 classes,
its 12 blocks and attention at 64×64 — with the random batch-norm tables, attention γ and
converged spectral norms the test fixture has (make_checkpoints.py). It is converted at
truncation 0.4, `rrun generate --class 3 --seed 5` makes the clean image, and this script
degrades it: grayscale (the luma DGP uses), a centred 44×44 hole (a third of the side, as
DGP's inpainting mode cuts), and ×4 bilinear downsampling with antialiasing. Each is then
restored by `rrun dgp … --class 3 --ref clean.png`, which prints PSNR/SSIM of the input,
of the chosen z's image before fine-tuning, and of the output.

Usage: python scripts/demo/dgp_demo.py [--rrun .build/release/rrun] [--convert .build/release/convert]
       [--iters 200] [--candidates 32] [--threads 2] [--out DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_checkpoints import converge_spectral_norms  # noqa: E402


def make_generator(folder):
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(60)
    config = BigGANConfig(output_dim=128, z_dim=32, class_embed_dim=32, channel_width=16, num_classes=10)
    model = BigGAN(config).eval()
    generator = torch.Generator().manual_seed(61)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_means"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
            elif name.endswith("running_vars"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("gamma"):
                tensor.fill_(0.7)
    converge_spectral_norms(model)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()},
              os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump(config.to_dict(), file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rrun", default=".build/release/rrun")
    parser.add_argument("--convert", default=".build/release/convert")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="keep the images in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or scratch
        os.makedirs(out, exist_ok=True)
        checkpoint = os.path.join(scratch, "biggan")
        os.mkdir(checkpoint)
        make_generator(checkpoint)
        model = os.path.join(scratch, "g.rgraph")
        subprocess.run([args.convert, checkpoint, "-o", model, "--truncation", "0.4"], check=True)
        clean = os.path.join(out, "clean.png")
        subprocess.run([args.rrun, "generate", model, "--class", "3", "--seed", "5", "-o", clean], check=True)

        image = np.asarray(Image.open(clean).convert("RGB")).astype(np.float32) / 255
        gray = image @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
        Image.fromarray(np.uint8(np.clip(np.round(gray * 255), 0, 255))).save(os.path.join(out, "gray.png"))
        size = image.shape[0]
        hole = size // 3
        begin = (size - hole) // 2
        mask = np.full((size, size), 255, np.uint8)
        mask[begin:begin + hole, begin:begin + hole] = 0
        Image.fromarray(mask).save(os.path.join(out, "mask.png"))
        holes = image * (mask[..., None] / 255)
        Image.fromarray(np.uint8(np.round(holes * 255))).save(os.path.join(out, "holes.png"))
        low = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], scale_factor=0.25, mode="bilinear",
                            antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
        Image.fromarray(np.uint8(np.clip(np.round(low * 255), 0, 255))).save(os.path.join(out, "low.png"))

        for task, degraded, extra in [("colorize", "gray.png", []), ("inpaint", "holes.png", ["--mask", os.path.join(out, "mask.png")]),
                                      ("sr4", "low.png", [])]:
            command = [args.rrun, "dgp", model, os.path.join(out, degraded), "--task", task, *extra, "--class", "3",
                       "--iters", str(args.iters), "--candidates", str(args.candidates), "--threads", str(args.threads),
                       "--ref", clean, "-o", os.path.join(out, f"dgp_{task}.png")]
            print("$ rrun dgp … --task", task, flush=True)
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
