#!/usr/bin/env bash
# The demo: installs what is missing, builds Restore in release mode, converts the bundled
# denoiser (trained by scripts/demo/train_denoiser.py) and restores the bundled noisy photo,
# printing PSNR/SSIM of the noisy input and of the restored output against the clean one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The release build is tuned for the machine it runs on (AVX2/AVX-512 where present).
build=(swift build -c release -Xswiftc -target-cpu -Xswiftc native)
"${build[@]}" >/dev/null
bin=$("${build[@]}" --show-bin-path)
mkdir -p out
"$bin/convert" examples/models/denoiser.onnx -o out/denoiser.rgraph --range 0,1 --residual --task denoise
"$bin/rrun" out/denoiser.rgraph examples/images/noisy.png -o out/restored.png --ref examples/images/clean.png
echo "restored image: out/restored.png"
