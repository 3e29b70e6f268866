#!/usr/bin/env python3
"""The 128x128 images of the Deep Image Prior demo (README, `rrun dip`).

dip_clean.png is the centre 128x128 crop (rows 64-191, columns 64-191) of
examples/images/clean.png (itself a crop of scikit-image's astronaut); dip_noisy.png adds
Gaussian noise with sigma 25/255 (NumPy default_rng(1318)), clipped and quantised to
8 bits; dip_mask.png is white where pixels are known and black on a set of random
8x8 holes (20 % of blocks, default_rng(7)) for the inpainting example; dip_low.png is
the clean crop downsampled x4 by 4x4 block means for the sr4 example.
"""
import os

import numpy as np
from PIL import Image

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "images")

clean = np.asarray(Image.open(os.path.join(HERE, "clean.png")).convert("RGB"), dtype=np.float64)[64:192, 64:192] / 255
noisy = np.clip(clean + np.random.default_rng(1318).normal(0, 25 / 255, clean.shape), 0, 1)
blocks = np.random.default_rng(7).random((16, 16)) > 0.2
mask = np.kron(blocks, np.ones((8, 8)))
low = clean.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))


def save(name, values):
    Image.fromarray(np.round(values * 255).astype(np.uint8)).save(os.path.join(HERE, name))


save("dip_clean.png", clean)
save("dip_noisy.png", noisy)
save("dip_mask.png", mask)
save("dip_low.png", low)
print("wrote dip_clean.png, dip_noisy.png, dip_mask.png, dip_low.png")
