"""blur_images vs numpy separable Gaussian-like filtering with zero padding."""

import numpy as np
import pytest
from keras import ops

from keras_afgan.ops import blur_images
from tests.testing import assert_close
from tests.testing import run_compiled
from tests.testing import to_numpy


def _blur_np(x, sigma):
    radius = int(np.floor(3 * sigma))
    t = np.arange(-radius, radius + 1)
    f = np.exp2(-((t / sigma) ** 2))
    f = f / f.sum()
    y = x.astype(np.float64)
    for axis in (1, 2):  # zero padding by the radius, then 'valid': same size
        y = np.apply_along_axis(
            lambda v: np.convolve(np.pad(v, radius), f, mode="valid"), axis, y)
    return y


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 2.0, 2.7])
def test_matches_numpy(sigma):
    x = np.random.default_rng(0).normal(size=(2, 16, 12, 3)).astype(np.float32)
    y = blur_images(ops.convert_to_tensor(x), sigma)
    assert_close(y, _blur_np(x, sigma), atol=2e-6)


def test_blur_keeps_a_constant_inside():
    x = np.full((1, 20, 20, 1), 0.75, dtype=np.float32)
    y = to_numpy(blur_images(ops.convert_to_tensor(x), 1.0))  # radius 3
    np.testing.assert_allclose(y[0, 3:-3, 3:-3, 0], 0.75, atol=1e-6)
    assert y[0, 0, 0, 0] < 0.75  # zero padding at the border


@pytest.mark.parametrize("sigma", [0, 0.0, -1.0])
def test_no_blur(sigma):
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    assert_close(blur_images(ops.convert_to_tensor(x), sigma), x, atol=0)


@pytest.mark.parametrize("sigma", [0.0, 0.3, 1.0, 2.5, 3.4, 10.0])
def test_tensor_sigma_matches_numpy(sigma):
    """A tensor sigma (the training schedule) with a fixed maximum support."""
    x = np.random.default_rng(2).normal(size=(2, 14, 18, 3)).astype(np.float32)
    y = blur_images(ops.convert_to_tensor(x), ops.convert_to_tensor(sigma, "float32"),
                    max_sigma=10.0)
    expected = x if sigma == 0 else _blur_np(x, sigma)
    assert_close(y, expected, atol=2e-6)


def test_tensor_sigma_needs_max_sigma():
    x = np.zeros((1, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="max_sigma"):
        blur_images(ops.convert_to_tensor(x), ops.convert_to_tensor(1.0))


@pytest.mark.parametrize("sigma", [0.0, 0.2, 0.33])
def test_tensor_sigma_below_a_third_skips_the_filter(sigma):
    """floor(3 sigma) = 0: the images pass through, no filter product runs.

    A NaN pixel shows it: any product with the banded matrices (even an
    identity) would spread it along its row and column (0 * NaN = NaN).
    """
    x = np.random.default_rng(3).normal(size=(1, 10, 10, 1)).astype(np.float32)
    x[0, 4, 5, 0] = np.nan

    def blur(images, s):
        return blur_images(images, s, max_sigma=10.0)

    y = to_numpy(run_compiled(blur, [], x, ops.convert_to_tensor(sigma, "float32")))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(y[~np.isnan(y)], x[~np.isnan(x)])
    # Just above a third, the filter runs (and the NaN spreads).
    y = to_numpy(blur(x, ops.convert_to_tensor(0.34, "float32")))
    assert np.isnan(y).sum() > 1
