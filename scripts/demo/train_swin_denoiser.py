#!/usr/bin/env python3
"""Trains a small Swin + UperNet as a residual denoiser for the demo and exports it.

The network is scripts/fixtures/swin_upernet.py's `SwinUperNet` (Swin backbone + UperNet
head in mmsegmentation's layout) whose classifier emits 3 channels: the correction, so
`restored = noisy + output` (convert with `--residual --range 0,1`). It is trained on the
same scikit-image photographs, with the same noise (Gaussian, sigma = 25/255, clipped and
quantised to 8 bits) and the same held-out crop of `astronaut` as the DnCNN demo model
(scripts/demo/train_denoiser.py, whose data functions are imported, not repeated).

Why patch size 1: UperNet's logits live at the first stage's resolution, 1/patch of the
image. A segmentation model upsamples them bilinearly, which is fine for class maps but
cannot express noise, which changes from one pixel to the next: at patch size 4 the
correction would be a smooth 1/4-resolution field and the per-pixel noise would stay. With
patch size 1 the first stage, and therefore the head's output, is at full resolution, so
the 3×3 convolutions of the head and the window attention see every pixel. Three stages
(full, 1/2 and 1/4 resolution) with window 8 give the pooling pyramid a 32×32-pixel view
per window at the last stage, and keep the model small (0.45 M parameters, 2.6 MB of ONNX).

Training patches are 64×64: a multiple of 8·4 = 32, so no stage pads a window with
zeros during training; for the same reason the demo converts with `--multiple 32`
(Restore reflect-pads other sizes, as the photographs' own borders look, and crops after).
The export keeps H and W dynamic: every padding in the model is computed from the size
and exports as shape arithmetic.

Usage: .venv/bin/python scripts/demo/train_swin_denoiser.py [--iterations N] [--max-minutes M]
           [--checkpoint PATH] [--from-checkpoint]
Writes examples/models/swin_denoiser.onnx, examples/models/swin_denoiser.md (training
record and PyTorch's scores) and the small references of
Tests/Fixtures/models/swin-denoiser/ that the Restore test compares against.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

# Passive OpenMP waiting on a shared machine; see train_denoiser.py. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import onnxruntime as ort
import skimage.data
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "fixtures"))
sys.path.insert(0, str(REPO / "scripts" / "demo"))
from common import TRANSFORMER_TOLERANCE, export_onnx, seed_everything  # noqa: E402
from swin_upernet import SwinUperNet  # noqa: E402
from train_denoiser import (  # noqa: E402
    HOLDOUT_CROP, SEED, SIGMA, add_noise, as_rgb_float, load_training_images, metrics, sample_batch,
)

CONFIG = dict(embed_dim=24, depths=[2, 2, 2], heads=[2, 4, 8], window=8, channels=32, classes=3, patch=1,
              dropout=0.0)
# Size of the small reference the Restore test compares with: a crop of the held-out
# noisy image whose sides are not multiples of the window, so the model's own padding runs.
REFERENCE_CROP = (slice(100, 141), slice(60, 113))


def build_model() -> SwinUperNet:
    model = SwinUperNet(**CONFIG)
    # Start as the identity restorer (zero correction): residual learning then only has
    # to learn the noise, and the first iterations do not damage the image.
    nn.init.zeros_(model.decode_head.conv_seg.weight)
    nn.init.zeros_(model.decode_head.conv_seg.bias)
    return model


def train(model: SwinUperNet, args: argparse.Namespace) -> tuple[int, float, list[str]]:
    """Adam with warm-up and cosine decay, on random noisy patches; returns iterations, seconds, log."""
    rng = np.random.default_rng(SEED)
    noise_generator = torch.Generator().manual_seed(SEED + 1)
    print("training images:")
    images = load_training_images()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    loss_function = nn.MSELoss()
    budget_seconds = args.max_minutes * 60
    started = time.monotonic()
    running_loss, completed, log = 0.0, 0, []
    model.train()
    for iteration in range(1, args.iterations + 1):
        # As in train_denoiser.py: progress is whichever runs out first, iterations or
        # wall time, so the decay still finishes on a busy machine.
        progress = max((iteration - 1) / args.iterations, (time.monotonic() - started) / budget_seconds)
        if progress >= 1:
            print(f"stopping after {completed} iterations: wall-time budget of {args.max_minutes} min reached")
            break
        # A short linear warm-up: attention layers trained from scratch with Adam at the
        # full rate in the first steps diverge easily.
        warmup = min(1.0, iteration / args.warmup)
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * warmup * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        clean_batch = sample_batch(images, args.batch, args.patch, rng)
        noisy_batch = add_noise(clean_batch, noise_generator)
        loss = loss_function(noisy_batch + model(noisy_batch), clean_batch)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running_loss += loss.item()
        completed = iteration
        if iteration % 100 == 0:
            elapsed = time.monotonic() - started
            line = (f"iter {iteration:5d}  loss {running_loss / 100:.6f}  (RMSE {math.sqrt(running_loss / 100) * 255:.2f}/255)"
                    f"  lr {optimizer.param_groups[0]['lr']:.2e}  {elapsed:6.0f}s")
            print(line, flush=True)
            log.append(line)
            running_loss = 0.0
    return completed, time.monotonic() - started, [f"{len(images)} training photographs"] + log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--max-minutes", type=float, default=23.0, help="training wall-time budget; the schedule follows it")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--checkpoint", type=Path, default=Path(tempfile.gettempdir()) / "swin_denoiser.pt",
                        help="where the trained weights are saved (not committed; default in the temporary directory)")
    parser.add_argument("--from-checkpoint", action="store_true", help="skip training; export the saved weights")
    args = parser.parse_args()

    # One thread: the machine's two cores are shared, and nice -n 10 is expected.
    torch.set_num_threads(1)
    seed_everything(SEED)
    model = build_model()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: Swin + UperNet {CONFIG}, {parameters} parameters")

    if args.from_checkpoint:
        record = torch.load(args.checkpoint)
        model.load_state_dict(record["state"])
        completed, seconds, log = record["completed"], record["seconds"], record["log"]
    else:
        completed, seconds, log = train(model, args)
        torch.save({"state": model.state_dict(), "completed": completed, "seconds": seconds, "log": log}, args.checkpoint)
    model.eval()

    clean = as_rgb_float(skimage.data.astronaut())[HOLDOUT_CROP]
    noisy = add_noise(clean, np.random.default_rng(SEED + 2))
    noisy_tensor = torch.from_numpy(noisy.transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        correction = model(noisy_tensor)
    restored = np.clip((noisy_tensor + correction)[0].numpy().transpose(1, 2, 0), 0, 1)
    restored_8bit = np.round(restored * 255) / 255
    noisy_psnr, noisy_ssim = metrics(clean, noisy)
    restored_psnr, restored_ssim = metrics(clean, restored)
    restored8_psnr, restored8_ssim = metrics(clean, restored_8bit)
    print(f"noisy    vs clean: PSNR {noisy_psnr:.2f} dB  SSIM {noisy_ssim:.4f}")
    print(f"restored vs clean: PSNR {restored_psnr:.2f} dB  SSIM {restored_ssim:.4f}  (PyTorch, float)")
    print(f"restored vs clean: PSNR {restored8_psnr:.2f} dB  SSIM {restored8_ssim:.4f}  (quantised to 8 bits)")

    onnx_path = REPO / "examples" / "models" / "swin_denoiser.onnx"
    export_onnx(model, (noisy_tensor,), onnx_path, ["noisy"], ["correction"], ["noisy"])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    # The full held-out image and an odd-sized crop (the model pads itself) through onnxruntime.
    reference_input = noisy_tensor[:, :, REFERENCE_CROP[0], REFERENCE_CROP[1]].contiguous()
    differences, corrections = {}, {}
    for label, image in [("256x256", noisy_tensor), ("crop", reference_input)]:
        with torch.no_grad():
            corrections[label] = (session.run(None, {"noisy": image.numpy()})[0], model(image).numpy())
        differences[label] = float(np.abs(corrections[label][0] - corrections[label][1]).max())
        print(f"onnxruntime vs PyTorch correction at {list(image.shape[2:])}: max abs diff {differences[label]:.2e}")
    # PyTorch's correction of the whole photo, to compare with `rrun MODEL noisy.npy -o OUT.npy`.
    np.save(args.checkpoint.with_name("swin_denoiser_pytorch_correction_256.npy"), corrections["256x256"][1])

    # Two golden cases (Tests/Fixtures/README.md) of the same input: onnxruntime's
    # correction, and PyTorch's in pytorch/.
    fixture = REPO / "Tests" / "Fixtures" / "models" / "swin-denoiser"
    (fixture / "pytorch").mkdir(parents=True, exist_ok=True)
    np.save(fixture / "input_0.npy", reference_input.numpy())
    np.save(fixture / "output_0.npy", corrections["crop"][0].astype(np.float32))
    np.save(fixture / "pytorch" / "output_0.npy", corrections["crop"][1].astype(np.float32))
    relative, justification = TRANSFORMER_TOLERANCE
    for folder, reference, extra in [(fixture, f"onnxruntime {ort.__version__} CPUExecutionProvider", {}),
                                     (fixture / "pytorch", f"PyTorch {torch.__version__}", {"inputsFrom": ".."})]:
        model = os.path.relpath(onnx_path, folder)
        case = {"model": model, "reference": reference, "tolerance": {"relative": relative},
                "justification": justification, "multiple": 32, **extra}
        (folder / "case.json").write_text(json.dumps(case, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    (fixture / "io.json").write_text(json.dumps({
        "model": "examples/models/swin_denoiser.onnx",
        "generator": "scripts/demo/train_swin_denoiser.py",
        "input": "input_0.npy (rows 100-140, columns 60-112 of examples/images/noisy.png as 0..1 floats)",
        "outputs": {"output_0.npy": f"onnxruntime {ort.__version__} CPUExecutionProvider",
                    "pytorch/output_0.npy": f"PyTorch {torch.__version__}"},
        "onnxruntime_vs_pytorch_max_abs": differences["crop"],
    }, indent=2) + "\n")

    size_kb = onnx_path.stat().st_size / 1024
    print(f"wrote {onnx_path.relative_to(REPO)} ({size_kb:.0f} KB), trained {completed} iterations in {seconds / 60:.1f} min")
    stopped_by = ("the iterations did" if completed == args.iterations
                  else "the wall time did, so a rerun on a busy machine\nstops at a different iteration")
    record = f"""# swin_denoiser.onnx

A Swin + UperNet (scripts/fixtures/swin_upernet.py: embed {CONFIG['embed_dim']}, depths
{CONFIG['depths']}, heads {CONFIG['heads']}, window {CONFIG['window']}, patch size 1, UperNet
with {CONFIG['channels']} channels and pool scales 1,2,3,6, a 3-channel classifier; {parameters}
parameters) trained by `scripts/demo/train_swin_denoiser.py` (seed {SEED}) as a residual
denoiser on the photographs, noise (sigma = {SIGMA * 255:.0f}/255) and held-out crop of
`train_denoiser.py`: {completed} Adam iterations, batch {args.batch}, random
{args.patch}x{args.patch} patches, learning rate {args.learning_rate:g} (warm-up {args.warmup} iterations,
cosine decay to a tenth over {args.iterations} iterations or {args.max_minutes:g} minutes, whichever
ran out first; {stopped_by}), {seconds / 60:.1f} minutes on one CPU thread.

Input `noisy` [1,3,H,W] in 0..1, H and W dynamic; output `correction`, so
`restored = noisy + correction` (convert with `--residual --range 0,1 --multiple 32`).

PyTorch's scores on ../images/noisy.png against ../images/clean.png (scikit-image,
`data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5`):

| image vs clean.png | PSNR (dB) | SSIM |
|---|---|---|
| noisy.png | {noisy_psnr:.2f} | {noisy_ssim:.4f} |
| restored by PyTorch (float, clipped) | {restored_psnr:.2f} | {restored_ssim:.4f} |
| restored by PyTorch, quantised to 8 bits | {restored8_psnr:.2f} | {restored8_ssim:.4f} |

onnxruntime's correction differs from PyTorch's by at most {differences['256x256']:.1e}
(256x256) and {differences['crop']:.1e} (a 41x53 crop, which the model pads itself).
"""
    (REPO / "examples" / "models" / "swin_denoiser.md").write_text(record)


if __name__ == "__main__":
    main()
