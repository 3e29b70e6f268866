"""Tests of the Python binding (python/restore) against onnxruntime's outputs and rrun."""

import os
import subprocess
import threading

import numpy as np
import pytest

import png
import restore
from conftest import FIXTURE


def random_image(height, width, channels, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, channels), dtype=np.uint8)


@pytest.fixture(scope="module")
def model(model_path):
    with restore.Model(model_path) as loaded:
        yield loaded


# ---- tensor mode against onnxruntime ------------------------------------------------------

@pytest.mark.parametrize("case", ["1x7", "32x32", "37x45", "64x48"])
def test_run_matches_onnxruntime_reference(model, case):
    # The fixture's output_0.npy is onnxruntime's output for input_0.npy.
    x = np.load(FIXTURE / case / "input_0.npy")
    expected = np.load(FIXTURE / case / "output_0.npy")
    y = model.run(x)
    assert y.shape == expected.shape and y.dtype == np.float32
    max_abs = float(np.max(np.abs(y - expected)))
    relative = max_abs / float(np.max(np.abs(expected)))
    print(f"dncnn {case}: max abs {max_abs:.3g}, relative {relative:.3g}")
    assert relative <= 1e-4


@pytest.mark.parametrize("case", ["20x28", "36x44"])
def test_run_with_a_second_input_matches_onnxruntime_reference(convert, tmp_path, case):
    # resgan takes an attribute vector besides the image: passed by name (restore_session_set_input).
    resgan = FIXTURE.parent / "resgan"
    path = tmp_path / "resgan.rgraph"
    subprocess.run([convert, str(resgan / "model.onnx"), "-o", str(path), "--range=-1,1", "--multiple", "4"], check=True)
    with restore.Model(path) as model:
        assert model.inputs == ["image", "attributes"]
        attributes = np.load(resgan / case / "input_1.npy")
        y = model.run(np.load(resgan / case / "input_0.npy"), inputs={"attributes": attributes})
        with pytest.raises(restore.ArgumentError, match="attributes"):
            model.run(np.load(resgan / case / "input_0.npy"))  # the input is set for one call only
    expected = np.load(resgan / case / "output_0.npy")
    max_abs = float(np.max(np.abs(y - expected)))
    relative = max_abs / float(np.max(np.abs(expected)))
    print(f"resgan {case}: max abs {max_abs:.3g}, relative {relative:.3g}")
    assert relative <= 1e-4


def test_run_accepts_non_contiguous_input(model):
    x = np.load(FIXTURE / "32x32" / "input_0.npy")
    np.testing.assert_array_equal(model.run(np.asfortranarray(x)), model.run(x))


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.float16])
def test_inputs_of_another_dtype_are_refused_with_the_fix(model, dtype):
    x = np.load(FIXTURE / "32x32" / "input_0.npy").astype(dtype)
    with pytest.raises(restore.ArgumentError,
                       match=rf"input 'image' takes float32 data, given {np.dtype(dtype)}; .*x\.astype\(np\.float32\)"):
        model.run(x)


def test_from_bytes_runs_like_the_file(model, model_path):
    with open(model_path, "rb") as file:
        data = file.read()
    with restore.Model.from_bytes(data) as copy:
        x = np.load(FIXTURE / "37x45" / "input_0.npy")
        np.testing.assert_array_equal(copy.run(x), model.run(x))
        assert copy.metadata == model.metadata


# ---- metadata --------------------------------------------------------------------------

def test_metadata(model):
    assert model.metadata["restore.range"] == "0,1"
    assert model.metadata_value("restore.range") == "0,1"
    assert model.metadata_value("no.such.key") is None
    assert model.inputs == ["image"] and len(model.outputs) == 1
    assert model.output_size(37, 45) == (37, 45)
    assert restore.version().count(".") == 2


# ---- image mode against rrun -------------------------------------------------------------

@pytest.mark.parametrize("channels, tile, overlap", [(3, 0, -1), (4, 0, -1), (3, 24, 5)])
def test_restore_matches_rrun(model, model_path, rrun, tmp_path, channels, tile, overlap):
    image = random_image(53, 70, channels, seed=channels + tile)
    source, reference = tmp_path / "in.png", tmp_path / "rrun.png"
    png.write(source, image)
    command = [rrun, model_path, str(source), "-o", str(reference), "--threads", "1"]
    if tile:
        command += ["--tile", str(tile), "--overlap", str(overlap)]
    subprocess.run(command, check=True)
    expected = png.read(reference)
    result = model.restore(image, tile=tile, overlap=overlap)
    assert result.shape == expected.shape and result.dtype == np.uint8
    difference = np.abs(result.astype(int) - expected.astype(int))
    print(f"restore vs rrun ({channels} channels, tile {tile}): max difference {difference.max()} levels, "
          f"{np.count_nonzero(difference)} of {difference.size} samples differ")
    # Same pipeline and quantisation as rrun: identical bytes.
    assert difference.max() == 0
    if channels == 4:
        np.testing.assert_array_equal(result[..., 3], image[..., 3])


@pytest.mark.parametrize("channels, dtype", [(1, np.uint8), (2, np.uint8), (1, np.uint16), (3, np.uint16),
                                             (4, np.uint16)])
def test_restore_reaches_gray_alpha_and_16_bit_images_as_rrun_does(model, model_path, rrun, tmp_path, channels, dtype):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, np.iinfo(dtype).max, size=(45, 38, channels), endpoint=True).astype(dtype)
    source, reference = tmp_path / "in.png", tmp_path / "rrun.png"
    png.write(source, image)
    subprocess.run([rrun, model_path, str(source), "-o", str(reference), "--threads", "1"], check=True)
    expected = png.read(reference)
    result = model.restore(image)
    assert result.shape == expected.shape and result.dtype == dtype
    np.testing.assert_array_equal(result, expected)
    gray = model.restore(image[..., 0])
    assert gray.shape == image.shape[:2] and gray.dtype == dtype


def test_tiles_come_from_the_memory_budget_as_in_rrun(model, model_path, rrun, tmp_path):
    image = random_image(96, 96, 3, seed=8)
    source, reference = tmp_path / "in.png", tmp_path / "rrun.png"
    png.write(source, image)
    subprocess.run([rrun, model_path, str(source), "-o", str(reference), "--threads", "1", "--max-memory", "3670016"],
                   check=True)
    np.testing.assert_array_equal(model.restore(image, max_memory=3_670_016), png.read(reference))
    with pytest.raises(restore.RestoreMemoryError, match="memory"):
        model.restore(image, max_memory=100_000)


def test_c_example_matches_rrun(model_path, rrun, tmp_path):
    example = os.environ.get("RESTORE_C_EXAMPLE")
    if not example:
        pytest.skip("RESTORE_C_EXAMPLE not set: scripts/test-capi.sh builds examples/c/restore_png.c and sets it")
    image = random_image(61, 47, 4, seed=21)
    source = tmp_path / "in.png"
    png.write(source, image)
    subprocess.run([example, model_path, str(source), str(tmp_path / "c.png")], check=True)
    subprocess.run([rrun, model_path, str(source), "-o", str(tmp_path / "rrun.png")], check=True)
    from_c, from_rrun = png.read(tmp_path / "c.png"), png.read(tmp_path / "rrun.png")
    difference = np.abs(from_c.astype(int) - from_rrun.astype(int))
    print(f"C example vs rrun: max difference {difference.max()} levels over {difference.size} samples")
    assert from_c.shape == from_rrun.shape and difference.max() == 0


def test_restore_is_the_same_on_four_threads(model):
    image = random_image(40, 36, 3, seed=5)
    expected = model.restore(image, tile=16, overlap=4)
    results = [None] * 4

    def work(index):
        for _ in range(3):
            results[index] = model.restore(image, tile=16, overlap=4)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


# ---- errors ----------------------------------------------------------------------------

def test_missing_file_is_an_io_error(tmp_path):
    with pytest.raises(restore.RestoreIOError) as raised:
        restore.Model(tmp_path / "missing.rgraph")
    assert "missing.rgraph" in raised.value.message and raised.value.status == 1


def test_garbage_bytes_are_a_format_error():
    with pytest.raises(restore.FormatError) as raised:
        restore.Model.from_bytes(bytes(range(256)) * 8)
    assert raised.value.message and raised.value.status == 2
    with pytest.raises(restore.FormatError):
        restore.Model.from_bytes(b"")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_model_is_a_format_error(model_path, tmp_path, fraction):
    with open(model_path, "rb") as file:
        data = file.read()
    truncated = tmp_path / "truncated.rgraph"
    truncated.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(restore.FormatError, match="truncated|past the end|shorter"):
        restore.Model(truncated)


def test_corrupted_model_is_a_format_error(model_path):
    with open(model_path, "rb") as file:
        data = bytearray(file.read())
    data[len(data) - 10] ^= 0xFF
    with pytest.raises(restore.FormatError, match="corrupt"):
        restore.Model.from_bytes(data)


def test_wrong_tensor_shapes_are_shape_errors(model):
    with pytest.raises(restore.ShapeError, match="image"):
        model.run(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(restore.ShapeError):
        model.run(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(restore.ShapeError):
        model.run(np.zeros((1, 3, 0, 8), np.float32))
    with pytest.raises(restore.ArgumentError):
        model.run(np.zeros((1,) * 9, np.float32))  # rank above RESTORE_MAX_RANK
    with pytest.raises(restore.ArgumentError, match="no input named"):
        model.run(np.zeros((1, 3, 8, 8), np.float32), inputs={"nope": np.zeros(3, np.float32)})


@pytest.mark.parametrize("image, message", [
    (np.zeros((8, 8, 5), np.uint8), "C = 1…4"),
    (np.zeros((8, 8, 3, 1), np.uint8), "H×W×C"),
    (np.zeros((8, 8, 3), np.float32), "uint8 or uint16"),
    (np.zeros((8, 8, 3), np.int32), "uint8 or uint16"),
    (np.zeros((0, 8, 3), np.uint8), "size"),
])
def test_bad_images_are_argument_errors(model, image, message):
    with pytest.raises(restore.ArgumentError, match=message):
        model.restore(image)


def test_bad_tiles_are_argument_errors(model):
    image = random_image(20, 20, 3, seed=1)
    with pytest.raises(restore.ArgumentError, match="tile"):
        model.restore(image, tile=-1)
    with pytest.raises(restore.ArgumentError, match="tile 8 is too small"):
        model.restore(image, tile=8)
    with pytest.raises(restore.ArgumentError, match="overlap"):
        model.restore(image, tile=16, overlap=16)
    with pytest.raises(restore.ArgumentError, match="int"):
        model.restore(image, tile=2**40)


def test_closed_model_raises(model_path):
    loaded = restore.Model(model_path)
    session = loaded.session(threads=1)
    loaded.close()
    loaded.close()
    with pytest.raises(restore.ArgumentError, match="closed"):
        loaded.run(np.zeros((1, 3, 4, 4), np.float32))
    # A session keeps the model alive in the library: it still runs.
    assert session.run(np.zeros((1, 3, 4, 4), np.float32)).shape == (1, 3, 4, 4)
    session.close()
    with pytest.raises(restore.ArgumentError, match="closed"):
        session.run(np.zeros((1, 3, 4, 4), np.float32))


def test_negative_thread_count_is_an_argument_error(model):
    with pytest.raises(restore.ArgumentError, match="threads"):
        model.session(threads=-1)


def test_image_mode_on_a_model_without_image_input_is_unsupported(convert, tmp_path):
    path = tmp_path / "vector.rgraph"
    onnx = os.path.join(os.path.dirname(__file__), "data", "vector_relu.onnx")
    subprocess.run([convert, onnx, "-o", str(path)], check=True)
    with restore.Model(path) as model:
        np.testing.assert_array_equal(model.run(np.array([[-1, 2, -3, 4]], np.float32)), [[0, 2, 0, 4]])
        with pytest.raises(restore.UnsupportedError, match="not an image restoration model"):
            model.restore(np.zeros((4, 4, 3), np.uint8))
        with pytest.raises(restore.UnsupportedError):
            model.output_size(4, 4)
        with pytest.raises(restore.ShapeError):
            model.run(np.zeros((1, 5), np.float32))
