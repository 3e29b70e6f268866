"""restore.Model.generate and restore.Model.dgp on the small random-init BigGAN-deep fixture."""

import numpy as np
import pytest

import png
import restore
from conftest import REPOSITORY

GENERATION = REPOSITORY / "Tests" / "Fixtures" / "checkpoints" / "biggan-deep" / "generate"


@pytest.fixture(scope="module")
def generator(generator_path):
    with restore.Model(generator_path) as loaded:
        yield loaded


def test_generator_info(generator):
    assert generator.generator_info() == (32, 32, 10, 16)


def test_generate_matches_the_package(generator):
    # image-<i>.png: pytorch-pretrained-biggan's convert_to_images of its model's output for
    # truncated_noise_sample(3, 16, 0.4, seed=7) and class 3 (scripts/fixtures/make_dgp_cases.py).
    images = generator.generate(3, seed=7, count=3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    for index in range(3):
        expected = png.read(str(GENERATION / f"image-{index}.png"))
        difference = np.abs(images[index].astype(int) - expected.astype(int))
        # A value within float rounding of a level boundary may land one level off.
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_generate_refuses(generator, model_path):
    with pytest.raises(restore.ArgumentError, match="class 10 is outside"):
        generator.generate(10)
    with pytest.raises(restore.ArgumentError, match="converted at truncation 0.4"):
        generator.generate(1, truncation=0.5)
    with restore.Model(model_path) as dncnn, pytest.raises(restore.UnsupportedError, match="not a class-conditional"):
        dncnn.generate(0)


def gray_of_a_generated_image(generator):
    image = generator.generate(3, seed=11)[0].astype(np.float32)
    return np.round(image @ np.array([0.2989, 0.5870, 0.1140], np.float32)).astype(np.uint8)


def test_dgp_reports_progress_and_restores(generator):
    gray = gray_of_a_generated_image(generator)
    seen = []
    result = generator.dgp(gray, task="colorize", class_index=3, iterations=5, candidates=2,
                           progress=lambda i, n, loss: seen.append((i, n, loss)))
    assert result.shape == (32, 32, 3) and result.dtype == np.uint8
    assert [(i, n) for i, n, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert all(np.isfinite(loss) for _, _, loss in seen)
    low = generator.generate(3, seed=11)[0][::4, ::4]
    assert generator.dgp(low, task="sr4", class_index=3, iterations=2, candidates=1, schedule="all").shape == (32, 32, 3)


def test_dgp_cancels_and_carries_exceptions(generator):
    gray = gray_of_a_generated_image(generator)
    with pytest.raises(restore.CancelledError):
        generator.dgp(gray, class_index=3, iterations=10, candidates=1, progress=lambda i, n, loss: i < 2)

    def failing(i, n, loss):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        generator.dgp(gray, class_index=3, iterations=10, candidates=1, progress=failing)


def test_dgp_refuses(generator):
    gray = gray_of_a_generated_image(generator)
    with pytest.raises(restore.ArgumentError, match="task must be"):
        generator.dgp(gray, task="deblur")
    with pytest.raises(restore.ArgumentError, match="needs options.mask"):
        generator.dgp(gray, task="inpaint", iterations=1, candidates=1)
    with pytest.raises(restore.ArgumentError, match="the mask has shape"):
        generator.dgp(gray, task="inpaint", mask=np.ones((4, 4)))
