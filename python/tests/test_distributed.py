"""restore.images (rrun's PNG codec from Python) and restore.distributed (a folder on a
local Ray cluster), both against rrun's own output files, byte for byte.

The Ray test needs the ``ray`` package (scripts/test.sh installs it); it ships the package
to the workers as the wheel scripts/build-wheel.sh makes when RESTORE_TEST_WHEEL names one
(scripts/test-capi.sh does), else as the package directory.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import png
import restore
from restore import distributed, images


def write_inputs(folder, count, seed=0):
    """`count` random 8-bit PNGs (RGB, and RGBA for every third), 24×20 to 40×36 pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        height, width = 20 + 4 * (index % 5), 24 + 4 * (index % 5)
        channels = 4 if index % 3 == 2 else 3
        name = f"image{index:02d}.png"
        png.write(folder / name, rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8))
        names.append(name)
    return names


def rrun_outputs(rrun, model_path, folder, names, target):
    """rrun's output for each image, run one by one in image mode."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        subprocess.run([rrun, model_path, str(folder / name), "-o", str(target / name)], check=True)
    return {name: (target / name).read_bytes() for name in names}


# ---- restore.images -------------------------------------------------------------------

def test_images_decode_and_encode_as_rrun_does(model_path, rrun, tmp_path):
    names = write_inputs(tmp_path / "in", 3)
    expected = rrun_outputs(rrun, model_path, tmp_path / "in", names, tmp_path / "rrun")
    with restore.Model(model_path) as model:
        for name in names:
            pixels = images.read_png(tmp_path / "in" / name)
            np.testing.assert_array_equal(pixels, png.read(tmp_path / "in" / name))
            images.write_png(tmp_path / name, model.restore(pixels))
            assert (tmp_path / name).read_bytes() == expected[name], name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_images_read_16_bit_gray_and_refuse_broken_files(tmp_path):
    gray = (np.arange(7 * 5, dtype=np.uint16).reshape(7, 5, 1) * 1873).astype(np.uint16)
    images.write_png(tmp_path / "gray16.png", gray)
    back = images.read_png(tmp_path / "gray16.png")
    assert back.dtype == np.uint16 and back.shape == (7, 5, 1)
    np.testing.assert_array_equal(back, gray)
    data = (tmp_path / "gray16.png").read_bytes()
    with pytest.raises(images.PNGError, match="cut.png: truncated PNG"):
        images.decode_png(data[:-20], "cut.png")
    with pytest.raises(images.PNGError, match="text.png: not a PNG file"):
        images.decode_png(b"hello, world", "text.png")
    with pytest.raises(images.PNGError, match="expected an H×W×C uint8 or uint16 array"):
        images.encode_png(np.zeros((4, 4, 3), np.float32))


# ---- restore.distributed on a local Ray cluster ------------------------------------------

class FlakyWorker(distributed.Worker):
    """Dies (the whole worker process) the first time it is given image01.png: the batch
    must be retried on a fresh worker. The marker file is shared by the local cluster."""

    marker = None

    def restore_batch(self, batch):
        if any(name == "image01.png" for name, _ in batch) and not os.path.exists(self.marker):
            pathlib.Path(self.marker).touch()
            os._exit(1)
        return super().restore_batch(batch)


def test_distributed_restores_a_folder_byte_identical_to_rrun(model_path, rrun, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray package is not installed (scripts/test.sh installs it)")
    source, output = tmp_path / "in", tmp_path / "out"
    names = write_inputs(source, 7)
    expected = rrun_outputs(rrun, model_path, source, names, tmp_path / "rrun")
    good = (source / names[0]).read_bytes()
    (source / "broken.png").write_bytes(good[: len(good) // 2])
    (source / "notes.txt").write_text("not an image")

    FlakyWorker.marker = str(tmp_path / "crashed-once")
    # The test module travels by value: the workers cannot import it.
    ray.cloudpickle.register_pickle_by_value(__import__(__name__))
    lines = []
    summary = distributed.restore_folder(model_path, source, output, workers=2, batch_size=2, retries=1,
                                         wheel=os.environ.get("RESTORE_TEST_WHEEL"), worker_class=FlakyWorker,
                                         log=lines.append)
    print("\n".join(lines))
    assert os.path.exists(FlakyWorker.marker), "the flaky worker never crashed"
    assert any("retry 1 of 1" in line for line in lines), lines
    assert summary["restored"] == 7 and summary["complete"] == 0
    assert list(summary["failed"]) == ["broken.png"] and "truncated PNG" in summary["failed"]["broken.png"]
    assert sorted(p.name for p in output.iterdir()) == names
    for name in names:
        assert (output / name).read_bytes() == expected[name], name
    print(f"{len(names)} images restored on a local Ray cluster in {summary['seconds']:.1f} s, identical to rrun")

    # A rerun through the command line, broken.png gone: every output is complete, nothing runs.
    (source / "broken.png").unlink()
    stamps = [(output / name).stat().st_mtime_ns for name in names]
    assert distributed.main([model_path, str(source), str(output), "--quiet"]) == 0
    assert [(output / name).stat().st_mtime_ns for name in names] == stamps


def test_a_list_names_paths_and_urls_and_refuses_clashing_names(tmp_path):
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed (scripts/test.sh installs it)")
    write_inputs(tmp_path / "a", 1)
    write_inputs(tmp_path / "b", 2, seed=1)
    with fsspec.open("memory://bucket/remote.png", "wb") as file:
        file.write((tmp_path / "b" / "image01.png").read_bytes())
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# inputs\n{tmp_path / 'a' / 'image00.png'}\n\nmemory://bucket/remote.png\n")
    inputs = distributed.list_inputs(listing)
    assert inputs == {"image00.png": str(tmp_path / "a" / "image00.png"), "remote.png": "memory://bucket/remote.png"}
    assert distributed.read_input(inputs["remote.png"]) == (tmp_path / "b" / "image01.png").read_bytes()
    assert not distributed.is_complete(inputs["remote.png"], tmp_path / "remote.png")
    (tmp_path / "remote.png").write_bytes(b"")
    assert distributed.is_complete(inputs["remote.png"], tmp_path / "remote.png")  # URLs: existing = complete

    listing.write_text(f"{tmp_path / 'a' / 'image00.png'}\n{tmp_path / 'b' / 'image00.png'}\n")
    with pytest.raises(ValueError, match="inputs.txt:2: .* has the same file name"):
        distributed.list_inputs(listing)


# ---- the Python example ----------------------------------------------------------------

def test_python_example_matches_rrun(model_path, rrun, tmp_path):
    names = write_inputs(tmp_path / "in", 2)
    expected = rrun_outputs(rrun, model_path, tmp_path / "in", names, tmp_path / "rrun")
    example = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "restore_png.py"
    for name in names:
        result = subprocess.run([sys.executable, str(example), model_path, str(tmp_path / "in" / name),
                                 str(tmp_path / name)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).read_bytes() == expected[name], name
    missing = subprocess.run([sys.executable, str(example), model_path, str(tmp_path / "absent.png"),
                              str(tmp_path / "x.png")], capture_output=True, text=True)
    assert missing.returncode == 1 and "absent.png" in missing.stderr and not (tmp_path / "x.png").exists()


# ---- the installed package -------------------------------------------------------------

def test_a_wheel_from_build_wheel_carries_its_libraries():
    wheel = os.environ.get("RESTORE_TEST_WHEEL")
    if wheel is None:
        pytest.skip("RESTORE_TEST_WHEEL not set: scripts/test-capi.sh builds the wheel, installs it and sets it")
    # The package under test is that wheel installed: it loads the libraries it carries.
    package = pathlib.Path(restore.__file__).resolve().parent
    assert pathlib.Path(restore.library_path()).parent == package
    assert pathlib.Path(images.library_path()).parent == package
    assert any(package.glob("libswiftCore.so"))
