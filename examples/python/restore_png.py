"""restore_png: restores a PNG image with the restore package (libRestore from Python).

    python examples/python/restore_png.py MODEL.rgraph IN.png OUT.png [TILE [OVERLAP]]

The Python twin of examples/c/restore_png.c. The PNG is read and written with
restore.images, rrun's own PNG codec, so OUT.png has the same bytes as
`rrun MODEL.rgraph IN.png -o OUT.png`. TILE 0 (the default) uses the model's tile size,
OVERLAP -1 (the default) its overlap.

Install the package first: `pip install ./python` (then set RESTORE_LIBRARY and
RESTORE_IMAGEIO_LIBRARY), or a wheel from scripts/build-wheel.sh, which carries both.
"""

import sys

import restore
from restore import images


def main(argv):
    if not 4 <= len(argv) <= 6:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    model_path, source, target = argv[1:4]
    tile = int(argv[4]) if len(argv) > 4 else 0
    overlap = int(argv[5]) if len(argv) > 5 else -1
    try:
        with restore.Model(model_path) as model:
            print(f"{model_path}: task {model.metadata_value('restore.task')}, inputs {model.inputs}")
            pixels = images.read_png(source)
            restored = model.restore(pixels, tile=tile, overlap=overlap)
            images.write_png(target, restored)
    except (OSError, restore.RestoreError) as error:
        print(f"restore_png: {error}", file=sys.stderr)
        return 1
    print(f"{source} ({pixels.shape[1]}×{pixels.shape[0]}) → {target} ({restored.shape[1]}×{restored.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
