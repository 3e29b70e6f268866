#!/usr/bin/env bash
# Creates the Python environment the fixture, demo and benchmark scripts need.
#
# Usage: scripts/setup-python.sh VENV     (the README's set-up: scripts/setup-python.sh .venv)
#
# torch's CPU build is installed first, then everything else with a constraints file that
# pins it, so no later package can pull in a CUDA build or a different version. Packages
# come from pip's configured sources only (PyPI, or the mirror and find-links of pip's
# configuration). Where those do not carry the CPU build, name an index that does:
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup-python.sh .venv
# Idempotent: an existing venv that already imports every package is left alone.
# torchvision and timm are deliberately absent: the scripts define their modules themselves.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv="$1"
torch_version="2.13.0+cpu"
# Added to pip's sources when set; empty means pip's configured sources alone.
torch_index="${TORCH_INDEX_URL:-}"
index_args=()
if [[ -n "$torch_index" ]]; then
    index_args=(--extra-index-url "$torch_index")
fi
packages=(onnx onnxruntime onnxscript safetensors scipy scikit-image pillow numpy pytest transformers pytorch-pretrained-biggan ray openvino)
# Import names of the packages above, to check an existing environment.
modules="torch onnx onnxruntime onnxscript safetensors scipy skimage PIL numpy pytest transformers pytorch_pretrained_biggan ray openvino"

python="$venv/bin/python"
if [[ -x "$python" ]] && "$python" -c "
import importlib, sys, torch
for name in '$modules'.split():
    importlib.import_module(name)
sys.exit(0 if torch.__version__ == '$torch_version' else 1)
" 2>/dev/null; then
    echo "$venv already has torch $torch_version and every package; nothing to do"
    exit 0
fi

if [[ ! -x "$python" ]]; then
    python3 -m venv "$venv"
fi
"$python" -m pip install --upgrade pip
"$python" -m pip install "${index_args[@]}" "torch==$torch_version"

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_version" > "$constraints"
"$python" -m pip install "${index_args[@]}" --constraint "$constraints" "${packages[@]}"

"$python" -c "import torch, onnx, onnxruntime; print('torch', torch.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
