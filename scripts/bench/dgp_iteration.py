#!/usr/bin/env python3
"""One Deep Generative Prior iteration at 128x128: Restore's `rrun dgp` against PyTorch
eager on the CPU, the same BigGAN-deep generator, the same thread count, in one run.

The generator is pytorch-pretrained-biggan's `BigGAN` with its default configuration
(BigGAN-deep 128: channel width 128, z 128, 1000 classes, 12 blocks and attention at 64x64,
about 56 M parameters; --channel-width makes a narrower one), random weights (seed 0), its
spectral norms' u, v brought to the leading singular vectors so W/σ has a trained model's
scale. Restore runs it converted from the same state dict (`convert DIR --truncation 0.4`).

One iteration is what `rrun dgp` does per step: the generator's forward pass for z and a
one-hot class, the loss (MSE of the grayscale image against a target, plus 0.02·mean(z²/2)),
the backward pass to z and to every generator weight, and an Adam step (β₁ = 0, β₂ = 0.999)
on z and on every weight. PyTorch runs the package's model as DGP would (evaluation mode,
spectral norm recomputing W_orig/σ from the stored u, v in every forward, with its
gradient); Restore's weights are W/σ folded at convert time.

Rounds alternate which engine goes first; each Restore round is one `rrun dgp -v` process
(its printed median iteration time; the first iteration, which also chooses z and plans,
is excluded); each PyTorch round times the same number of iterations after one warm-up.
Prints the medians of the rounds' medians, the ratio Restore / PyTorch and the load average.

Usage: python scripts/bench/dgp_iteration.py [--rrun .build/release/rrun] [--convert .build/release/convert]
       [--iters 5] [--rounds 3] [--threads 2] [--channel-width 128]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_checkpoints import converge_spectral_norms  # noqa: E402
from iteration_rounds import alternate_rounds, print_summary, rrun_iteration_ms  # noqa: E402

LUMA = torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)


def make_generator(folder, channel_width):
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(0)
    config = BigGANConfig(channel_width=channel_width)
    model = BigGAN(config).eval()
    converge_spectral_norms(model, iterations=5)
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()},
              os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump(config.to_dict(), file)
    return model, config


def torch_iterations(model, config, target, iters, threads):
    torch.set_num_threads(threads)
    z = (torch.randn(1, config.z_dim) * 0.3).requires_grad_(True)
    classes = torch.zeros(1, config.num_classes)
    classes[0, 0] = 1
    z_optimizer = torch.optim.Adam([z], lr=2e-3, betas=(0.0, 0.999))
    g_optimizer = torch.optim.Adam(model.parameters(), lr=5e-5, betas=(0.0, 0.999))
    times = []
    for step in range(iters + 1):
        start = time.perf_counter()
        z_optimizer.zero_grad()
        g_optimizer.zero_grad()
        image = model(z, classes, 0.4)
        gray = (image * LUMA).sum(1, keepdim=True)
        loss = F.mse_loss(gray, target) + 0.02 * (z ** 2 / 2).mean()
        loss.backward()
        z_optimizer.step()
        g_optimizer.step()
        if step > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def restore_iterations(rrun, model, image, iters, threads):
    return rrun_iteration_ms([rrun, "dgp", model, image, "--task", "colorize", "--class", "0", "--candidates", "1",
                              "--schedule", "all", "--iters", str(iters + 1), "--threads", str(threads), "-v",
                              "-o", os.path.join(os.path.dirname(image), "out.png")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rrun", default=".build/release/rrun")
    parser.add_argument("--convert", default=".build/release/convert")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channel-width", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PIL import Image
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = os.path.join(folder, "biggan")
        os.mkdir(checkpoint)
        model, config = make_generator(checkpoint, args.channel_width)
        converted = os.path.join(folder, "g.rgraph")
        subprocess.run([args.convert, checkpoint, "-o", converted, "--truncation", "0.4"], check=True,
                       capture_output=True)
        size = config.output_dim
        pixels = np.random.default_rng(3).integers(0, 256, (size, size), dtype=np.uint8)
        image = os.path.join(folder, "gray.png")
        Image.fromarray(np.stack([pixels] * 3, -1)).save(image)
        target = torch.from_numpy(pixels.astype(np.float32) / 255 * 2 - 1).view(1, 1, size, size)
        parameters = sum(p.numel() for p in model.parameters())
        restore, pytorch, loads = alternate_rounds(
            args.rounds, lambda: restore_iterations(args.rrun, converted, image, args.iters, args.threads),
            lambda: torch_iterations(model, config, target, args.iters, args.threads))
    print_summary(f"DGP iteration (G forward, backward to z and all {parameters / 1e6:.1f} M weights, Adam) at {size}x{size}, "
                  f"BigGAN-deep channel width {args.channel_width}, {args.threads} threads, {args.rounds} rounds of {args.iters} iterations",
                  restore, pytorch, loads, torch.__version__, args.json, digits=0)


if __name__ == "__main__":
    main()
