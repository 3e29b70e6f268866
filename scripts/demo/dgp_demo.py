#!/usr/bin/env python3
"""The Deep Generative Prior demo of the README: colorization, inpainting and ×4
super-resolution of an image the generator itself made.

No pretrained BigGAN can be fetched here, so the generator is the test fixture: the
random-init BigGAN-deep of scripts/fixtures/make_checkpoints.py (32×32, channel width 4,
z 16, 10 classes, 5 blocks and attention), converted at truncation 0.4.
`rrun generate --class 2 --seed 11` makes the clean image, and this script degrades it:
grayscale (the luma DGP uses), a centred 10×10 hole (a third of the side, as DGP's
inpainting mode cuts), and ×4 bilinear downsampling with antialiasing. Each is then
restored by `rrun dgp … --class 2 --ref clean.png`, which prints PSNR/SSIM of the input,
of the chosen z's image before fine-tuning, and of the output.

(A random-init generator varies little with z — at 128×128 with channel width 16, every
sample of z gave nearly the same flat texture, 61 dB from the target before any
fine-tuning — so the small fixture, whose samples differ, shows more.)

Usage: python scripts/demo/dgp_demo.py [--rrun .build/release/rrun] [--convert .build/release/convert]
       [--iters 100] [--candidates 16] [--threads 2] [--out DIR]
"""
import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

FIXTURE = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "checkpoints" / "biggan-deep"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rrun", default=".build/release/rrun")
    parser.add_argument("--convert", default=".build/release/convert")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="keep the images in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or scratch
        os.makedirs(out, exist_ok=True)
        model = os.path.join(scratch, "g.rgraph")
        subprocess.run([args.convert, str(FIXTURE), "-o", model, "--truncation", "0.4"], check=True)
        clean = os.path.join(out, "clean.png")
        subprocess.run([args.rrun, "generate", model, "--class", "2", "--seed", "11", "-o", clean], check=True)

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
            command = [args.rrun, "dgp", model, os.path.join(out, degraded), "--task", task, *extra, "--class", "2",
                       "--iters", str(args.iters), "--candidates", str(args.candidates), "--threads", str(args.threads),
                       "--ref", clean, "-o", os.path.join(out, f"dgp_{task}.png")]
            print("$ rrun dgp … --task", task, flush=True)
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
