#!/usr/bin/env bash
# The demo: installs what is missing, builds Restore in release mode, converts the two bundled
# denoisers (a DnCNN trained by scripts/demo/train_denoiser.py and a Swin + UperNet trained by
# scripts/demo/train_swin_denoiser.py) and restores the bundled noisy photo with each,
# printing PSNR/SSIM of the noisy input and of each restored output against the clean one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A plain release build: the hot kernels pick their AVX2 or AVX-512 variant at run time.
build=(swift build -c release)
"${build[@]}" >/dev/null
bin=$("${build[@]}" --show-bin-path)
mkdir -p out
"$bin/convert" examples/models/denoiser.onnx -o out/denoiser.rgraph --range 0,1 --residual --task denoise
"$bin/rrun" out/denoiser.rgraph examples/images/noisy.png -o out/restored.png --ref examples/images/clean.png
echo "restored image (DnCNN): out/restored.png"
# The Swin model predicts a correction too. --multiple 32 reflect-pads other sizes so that its
# three stages (full, 1/2 and 1/4 resolution) hold whole 8×8 windows, as in training.
"$bin/convert" examples/models/swin_denoiser.onnx -o out/swin_denoiser.rgraph --range 0,1 --residual --multiple 32 --task denoise
"$bin/rrun" out/swin_denoiser.rgraph examples/images/noisy.png -o out/swin_restored.png --ref examples/images/clean.png
echo "restored image (Swin + UperNet): out/swin_restored.png"
