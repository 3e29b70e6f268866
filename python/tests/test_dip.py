"""Tests of restore.dip (restore_dip): progress, cancelling, the tasks, and agreement with rrun dip."""

import subprocess

import numpy as np
import pytest

import png
import restore


def noisy_image(height=12, width=16, channels=3, seed=3):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def test_progress_reports_every_iteration():
    calls = []
    result = restore.dip(noisy_image(), iterations=3, threads=1, progress=lambda i, n, loss: calls.append((i, n, loss)))
    assert [(i, n) for i, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(loss >= 0 for _, _, loss in calls)
    assert result.shape == (12, 16, 3) and result.dtype == np.uint8


def test_returning_false_cancels():
    calls = []

    def progress(iteration, total, loss):
        calls.append(iteration)
        return iteration < 2

    with pytest.raises(restore.CancelledError, match="cancelled"):
        restore.dip(noisy_image(), iterations=50, threads=1, progress=progress)
    assert calls == [1, 2]


def test_an_exception_in_the_callback_cancels_and_is_raised():
    class Stop(Exception):
        pass

    def progress(iteration, total, loss):
        raise Stop(iteration)

    with pytest.raises(Stop):
        restore.dip(noisy_image(), iterations=50, threads=1, progress=progress)


def test_tasks_and_layouts():
    image = noisy_image(channels=4)
    sr = restore.dip(image, task="sr4", iterations=1, threads=1)
    assert sr.shape == (48, 64, 4)
    # Alpha is carried over, repeated over 4×4 blocks.
    assert np.array_equal(sr[::4, ::4, 3], image[:, :, 3])
    mask = np.ones((12, 16), dtype=bool)
    mask[4:8, 4:10] = False
    gray16 = noisy_image(channels=1)[:, :, 0].astype(np.uint16) * 257
    filled = restore.dip(gray16, task="inpaint", mask=mask, iterations=1, threads=1, net="vit")
    assert filled.shape == (12, 16) and filled.dtype == np.uint16


def test_bad_arguments_are_refused():
    image = noisy_image()
    with pytest.raises(restore.ArgumentError, match="mask"):
        restore.dip(image, task="inpaint", iterations=1)
    with pytest.raises(restore.ArgumentError, match="mask"):
        restore.dip(image, mask=np.ones((12, 16)), iterations=1)
    with pytest.raises(restore.ArgumentError, match="mask"):
        restore.dip(image, task="inpaint", mask=np.ones((5, 5)), iterations=1)
    with pytest.raises(restore.ArgumentError, match="iterations"):
        restore.dip(image, iterations=0)
    with pytest.raises(restore.ArgumentError, match="task"):
        restore.dip(image, task="deblur")
    with pytest.raises(restore.ArgumentError, match="net"):
        restore.dip(image, net="resnet")
    with pytest.raises(restore.ArgumentError):
        restore.dip(image.astype(np.float32))


def test_matches_rrun_dip(rrun, tmp_path):
    # One thread: the same seed gives the same optimisation, so the same bytes.
    image = noisy_image(20, 24)
    source, reference = tmp_path / "noisy.png", tmp_path / "rrun.png"
    png.write(source, image)
    subprocess.run([rrun, "dip", str(source), "--iters", "4", "--seed", "7", "--threads", "1", "-o", str(reference)],
                   check=True, capture_output=True)
    result = restore.dip(image, iterations=4, seed=7, threads=1)
    assert np.array_equal(result, png.read(reference))
