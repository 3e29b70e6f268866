#!/usr/bin/env bash
# `rrun finetune` on the bundled Swin + UperNet denoiser (README, "Fine-tuning a head"):
# noisy/clean pairs from photographs it never trained on (scripts/demo/make_finetune_pairs.py:
# 12 training tiles of the stereo motorcycle views, 4 held-out tiles of astronaut) at each
# noise level given, the head trained on the training pairs, PSNR on the held-out crops
# before and after; then the bundled and the tuned model restore the 4 held-out images whole
# with plain `rrun` (folder mode, 8-bit PNGs, PSNR/SSIM against the clean tiles).
#
# Usage: scripts/demo/finetune_demo.sh [SIGMA ...]     (8-bit steps; default: 25 50)
#        PYTHON=/path/to/python (default .venv/bin/python, see scripts/setup-python.sh)
# Writes out/finetune/.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
sigmas=("$@")
[[ ${#sigmas[@]} -gt 0 ]] || sigmas=(25 50)
build=(swift build -c release)
"${build[@]}" >/dev/null
bin=$("${build[@]}" --show-bin-path)
out=out/finetune
mkdir -p "$out"
"$bin/convert" examples/models/swin_denoiser.onnx -o "$out/swin_denoiser.rgraph" \
    --range 0,1 --residual --multiple 32 --task denoise
for sigma in "${sigmas[@]}"; do
    pairs="$out/sigma$sigma"
    "$python" scripts/demo/make_finetune_pairs.py --sigma "$sigma" --out "$pairs"
    echo "== sigma $sigma: rrun finetune"
    "$bin/rrun" finetune "$out/swin_denoiser.rgraph" --pairs "$pairs/noisy" "$pairs/clean" --holdout 4 \
        -o "$out/swin_sigma$sigma.rgraph"
    for kind in noisy clean; do
        mkdir -p "$pairs/held-out/$kind"
        cp "$pairs/$kind"/3-astronaut-* "$pairs/held-out/$kind/"
    done
    for model in swin_denoiser "swin_sigma$sigma"; do
        echo "== sigma $sigma: rrun $model.rgraph on the held-out images"
        "$bin/rrun" "$out/$model.rgraph" "$pairs/held-out/noisy" -o "$pairs/restored-$model" \
            --ref "$pairs/held-out/clean"
    done
done
