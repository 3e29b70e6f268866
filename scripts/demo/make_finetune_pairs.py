#!/usr/bin/env python3
"""Writes noisy/clean PNG pairs for the `rrun finetune` demo from photographs the demo
denoisers never trained on.

scripts/demo/train_denoiser.py and train_swin_denoiser.py train on the scikit-image
samples of TRAINING_NAMES (those present offline) and hold `astronaut` out; the stereo
motorcycle pair is not among them either (TRAINING_NAMES asks for `motorcycle_left`,
which this scikit-image does not have under that name, so it is skipped). The pairs are:

  1-motorcycle-left-rRcC.png, 2-motorcycle-right-rRcC.png  2×3 tiles of each view (training)
  3-astronaut-rRcC.png                                      2×2 tiles of astronaut (held out:
                                                            the last 4 in name order, --holdout 4)

Noise is drawn as in training (Gaussian, clipped to 0..1, quantised to 8 bits:
train_denoiser.add_noise), at --sigma (in 8-bit steps; the demo models were trained at 25).

Usage: /work/venv/bin/python scripts/demo/make_finetune_pairs.py --sigma 25 --out out/finetune/sigma25
Writes OUT/noisy/*.png and OUT/clean/*.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import skimage.data

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "demo"))
from train_denoiser import HOLDOUT_NAME, SEED, TRAINING_NAMES, add_noise, as_rgb_float, save_png  # noqa: E402


def tiles(image: np.ndarray, rows: int, columns: int) -> dict[str, np.ndarray]:
    """The image cut into rows × columns equal tiles (a remainder at the far edges is dropped)."""
    height, width = image.shape[0] // rows, image.shape[1] // columns
    return {f"r{r}c{c}": image[r * height:(r + 1) * height, c * width:(c + 1) * width]
            for r in range(rows) for c in range(columns)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, default=25.0, help="noise standard deviation in 8-bit steps")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    assert HOLDOUT_NAME == "astronaut" and "astronaut" not in TRAINING_NAMES
    assert not hasattr(skimage.data, "motorcycle_left"), "motorcycle_left would have been a training image"
    left, right, _ = skimage.data.stereo_motorcycle()
    photographs = [("1-motorcycle-left", left, 2, 3), ("2-motorcycle-right", right, 2, 3),
                   ("3-astronaut", skimage.data.astronaut(), 2, 2)]
    rng = np.random.default_rng(SEED + 100 + round(args.sigma))
    count = 0
    for stem, image, rows, columns in photographs:
        for position, clean in tiles(as_rgb_float(np.asarray(image)), rows, columns).items():
            name = f"{stem}-{position}.png"
            # The clean tile as 8 bits (what the clean PNG holds), then the noise on it.
            clean = np.round(clean * 255) / 255
            save_png(clean, args.out / "clean" / name)
            save_png(add_noise(clean, rng, args.sigma / 255), args.out / "noisy" / name)
            count += 1
    print(f"{count} pairs (sigma {args.sigma:g}/255) in {args.out}/noisy and {args.out}/clean")


if __name__ == "__main__":
    main()
