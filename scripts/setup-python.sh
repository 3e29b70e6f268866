#!/usr/bin/env bash
# Creates the Python environment the fixture, demo and benchmark scripts need.
#
# Usage: scripts/setup-python.sh VENV
#
# torch is installed first from PyTorch's CPU wheel index, then everything else with a
# constraints file that pins torch, so no later package can pull in a CUDA build or a
# different version. Idempotent: an existing venv that already imports every package is
# left alone. torchvision and timm are deliberately absent: the scripts define their
# modules themselves.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv="$1"
torch_version="2.13.0+cpu"
torch_index="https://download.pytorch.org/whl/cpu"
packages=(onnx onnxruntime onnxscript safetensors scipy scikit-image pillow numpy pytest transformers)
# Import names of the packages above, to check an existing environment.
modules="torch onnx onnxruntime onnxscript safetensors scipy skimage PIL numpy pytest transformers"

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
"$python" -m pip install "torch==$torch_version" --index-url "$torch_index"

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_version" > "$constraints"
"$python" -m pip install --constraint "$constraints" --extra-index-url "$torch_index" "${packages[@]}"

"$python" -c "import torch, onnx, onnxruntime; print('torch', torch.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
