"""Images per second for a folder: rrun folder mode (one process) vs restore.distributed
(a local Ray cluster), on the same noisy photos, whole commands, rounds alternating.

    python scripts/bench/folder_throughput.py MODEL.rgraph --rrun .build/release/rrun \
        [--images 16] [--size 256] [--rounds 3] [--workers 2]

The images are crops of scikit-image's sample photos with Gaussian noise (sigma 25/255),
made once into a temporary folder. Each configuration restores the whole folder into an
empty output folder; wall time includes loading the model and, for Ray, starting the
local cluster and its workers (printed separately as the time to the first output is not
measurable from outside: the Ray rows also give the restore time the module reports).
The Python package must find libRestore and libRestoreImageIO (a wheel from
scripts/build-wheel.sh installed, or RESTORE_LIBRARY / RESTORE_IMAGEIO_LIBRARY).
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import skimage.data
from PIL import Image


def make_images(folder, count, size, seed=2026):
    rng = np.random.default_rng(seed)
    sources = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]
    for index in range(count):
        source = sources[index % len(sources)]
        if min(source.shape[:2]) < size:
            source = np.array(Image.fromarray(source).resize((size * 2, size * 2)))
        y = rng.integers(0, source.shape[0] - size + 1)
        x = rng.integers(0, source.shape[1] - size + 1)
        clean = source[y:y + size, x:x + size].astype(np.float64) / 255
        noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
        Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(os.path.join(folder, f"{index:03d}.png"))


def timed(command, output):
    shutil.rmtree(output, ignore_errors=True)
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    reported = re.search(r"in ([0-9.]+) s \(", result.stdout)
    return seconds, float(reported.group(1)) if reported else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--rrun", required=True)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    arguments = parser.parse_args()

    work = tempfile.mkdtemp(prefix="restore-bench-folder-")
    try:
        source, output = os.path.join(work, "in"), os.path.join(work, "out")
        os.makedirs(source)
        make_images(source, arguments.images, arguments.size)
        threads = str(arguments.workers)
        configurations = {
            f"rrun folder mode, {threads} threads, images in parallel (default)":
                [arguments.rrun, arguments.model, source, "-o", output, "--threads", threads],
            f"rrun folder mode, {threads} threads, one image at a time (--jobs 1)":
                [arguments.rrun, arguments.model, source, "-o", output, "--threads", threads, "--jobs", "1"],
            f"restore.distributed, local Ray cluster, {threads} workers × 1 thread":
                [sys.executable, "-m", "restore.distributed", arguments.model, source, output,
                 "--workers", threads, "--quiet"],
        }
        times = {name: [] for name in configurations}
        restore_times = {name: [] for name in configurations}
        for _ in range(arguments.rounds):
            for name, command in configurations.items():
                seconds, reported = timed(command, output)
                times[name].append(seconds)
                if reported is not None:
                    restore_times[name].append(reported)
        print(f"{arguments.images} images of {arguments.size}×{arguments.size}, {arguments.rounds} rounds, "
              f"load average {os.getloadavg()[0]:.1f}")
        for name in configurations:
            median = statistics.median(times[name])
            line = (f"{name}: whole command median {median:.2f} s ({arguments.images / median:.2f} images/s), "
                    f"runs {', '.join(f'{t:.2f}' for t in times[name])}")
            if restore_times[name]:
                inner = statistics.median(restore_times[name])
                line += f"; restoring alone {inner:.2f} s ({arguments.images / inner:.2f} images/s)"
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
