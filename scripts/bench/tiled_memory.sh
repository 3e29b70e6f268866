#!/usr/bin/env bash
# Peak memory and wall time of restoring a large PNG in tiles.
#
#   scripts/bench/tiled_memory.sh MODEL.rgraph [rrun options, e.g. --tile 512 --overlap 32]
#
# Makes (once) a 4096×4096 8-bit RGB PNG: the bundled noisy photo tiled 16×16, each copy
# flipped differently so no two neighbours are identical, plus Gaussian noise (σ = 10
# levels, seed 0); then runs `rrun MODEL IN.png -o OUT.png` under /usr/bin/time -v and
# prints the wall time, the peak resident set size and the load average before the run.
# Environment: PY (default .venv/bin/python from scripts/setup-python.sh .venv, needs numpy
# and Pillow), RRUN (default .build/release/rrun), SIZE (default 4096), WORK (default
# $TMPDIR/restore-tiled-memory, TMPDIR defaulting to /tmp).
set -euo pipefail
if [ $# -lt 1 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
model=$(realpath "$1")
shift
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
RRUN=${RRUN:-.build/release/rrun}
SIZE=${SIZE:-4096}
WORK=${WORK:-${TMPDIR:-/tmp}/restore-tiled-memory}
mkdir -p "$WORK"
image="$WORK/photo-$SIZE.png"
if [ ! -f "$image" ]; then
    "$PY" - "$image" "$SIZE" <<'EOF'
import sys
import numpy as np
from PIL import Image

path, size = sys.argv[1], int(sys.argv[2])
tile = np.asarray(Image.open("examples/images/noisy.png").convert("RGB"), dtype=np.float32)
rows = []
for i in range(-(-size // tile.shape[0])):
    row = []
    for j in range(-(-size // tile.shape[1])):
        t = tile[:, ::-1] if j % 2 else tile
        row.append(t[::-1] if i % 2 else t)
    rows.append(np.concatenate(row, axis=1))
mosaic = np.concatenate(rows, axis=0)[:size, :size]
noisy = mosaic + np.random.default_rng(0).normal(0, 10, mosaic.shape)
Image.fromarray(np.clip(noisy.round(), 0, 255).astype(np.uint8)).save(path)
EOF
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
report="$WORK/time.txt"
/usr/bin/time -v "$RRUN" "$model" "$image" -o "$WORK/restored.png" "$@" 2> "$report" \
    || { cat "$report" >&2; exit 1; }
wall=$(sed -n 's/^\s*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$report")
rss=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$report")
echo "model $model, ${SIZE}×${SIZE} RGB, rrun options: ${*:-(model defaults)}"
echo "wall time $wall, peak RSS $((rss / 1024)) MiB"
