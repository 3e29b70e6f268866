#!/usr/bin/env python3
"""One Deep Image Prior iteration (forward, backward, Adam step) at 256x256: Restore's
`rrun dip` against PyTorch eager on the CPU, same network, same thread count, in one run.

The PyTorch network is the one `rrun dip --net unet` builds (Sources/Runtime/Training/
PriorNetworks.swift): five levels with 16, 32, 64, 64, 128 channels down and up and 4 skip
channels; per level a stride-2 3x3 conv and a 3x3 conv down, a 1x1 skip conv, bilinear x2
upsampling (align_corners=False), concatenation (skip first), normalisation, a 3x3 and a
1x1 conv up; every conv with bias, zero padding, followed by instance normalisation
(affine) and LeakyReLU(0.2); a 1x1 conv to RGB and a sigmoid. Input: 32 noise channels.
Loss: MSE against the image; Adam, lr 0.01. PyTorch's iteration includes the Gaussian
perturbation of the input, like Restore's.

Rounds alternate which engine goes first; each Restore round is one `rrun dip -v` process
(its printed median iteration time, the first iteration excluded as it plans); each
PyTorch round times the same number of iterations after one warm-up. Prints the medians
of the rounds' medians and the ratio Restore / PyTorch.

Usage: python scripts/bench/dip_iteration.py [--rrun .build/release/rrun] [--size 256]
       [--iters 20] [--rounds 3] [--threads 2]
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from iteration_rounds import alternate_rounds, print_summary, rrun_iteration_ms


class Block(nn.Sequential):
    def __init__(self, source, target, kernel, stride=1):
        super().__init__(nn.Conv2d(source, target, kernel, stride, (kernel - 1) // 2),
                         nn.InstanceNorm2d(target, affine=True), nn.LeakyReLU(0.2))


class Level(nn.Module):
    def __init__(self, i, depth, down, up, skip):
        super().__init__()
        self.skip = Block(depth, skip[i], 1)
        self.down = nn.Sequential(Block(depth, down[i], 3, 2), Block(down[i], down[i], 3))
        self.deeper = Level(i + 1, down[i], down, up, skip) if i + 1 < len(down) else None
        channels = skip[i] + (up[i + 1] if self.deeper else down[i])
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.up = nn.Sequential(Block(channels, up[i], 3), Block(up[i], up[i], 1))

    def forward(self, x):
        deeper = self.down(x)
        if self.deeper:
            deeper = self.deeper(deeper)
        deeper = F.interpolate(deeper, scale_factor=2, mode="bilinear", align_corners=False)
        return self.up(self.norm(torch.cat([self.skip(x), deeper], 1)))


class UNet(nn.Module):
    def __init__(self, down=(16, 32, 64, 64, 128), up=(16, 32, 64, 64, 128), skip=(4, 4, 4, 4, 4)):
        super().__init__()
        self.body = Level(0, 32, down, up, skip)
        self.output = nn.Conv2d(up[0], 3, 1)

    def forward(self, x):
        return torch.sigmoid(self.output(self.body(x)))


def torch_iterations(size, iters, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = UNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    noise = torch.rand(1, 32, size, size) * 0.1
    target = torch.rand(1, 3, size, size)
    times = []
    for step in range(iters + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        output = net(noise + torch.randn_like(noise) / 30)
        F.mse_loss(output, target).backward()
        optimizer.step()
        if step > 0:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def restore_iterations(rrun, image, iters, threads):
    return rrun_iteration_ms([rrun, "dip", image, "--iters", str(iters + 1), "--threads", str(threads), "-v",
                              "-o", os.path.join(os.path.dirname(image), "out.png")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rrun", default=".build/release/rrun")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PIL import Image
    with tempfile.TemporaryDirectory() as folder:
        image = os.path.join(folder, "noisy.png")
        pixels = np.random.default_rng(3).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(image)
        restore, pytorch, loads = alternate_rounds(
            args.rounds, lambda: restore_iterations(args.rrun, image, args.iters, args.threads),
            lambda: torch_iterations(args.size, args.iters, args.threads))
    print_summary(f"DIP iteration (forward, backward, Adam) at {args.size}x{args.size}, {args.threads} threads, "
                  f"{args.rounds} rounds of {args.iters} iterations", restore, pytorch, loads, torch.__version__, args.json)


if __name__ == "__main__":
    main()
