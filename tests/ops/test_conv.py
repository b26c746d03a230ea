"""conv2d_valid against scipy, and on an empty batch (which TensorFlow's
oneDNN convolution answers with the input's height and width)."""

import numpy as np
import pytest
import scipy.signal

from keras_afgan.ops.conv import conv2d_valid
from tests.testing import assert_close
from tests.testing import to_numpy


def _scipy_conv(x, kernel, stride):
    n, h, w, _ = x.shape
    k, _, _, out = kernel.shape
    y = np.zeros((n, h - k + 1, w - k + 1, out))
    for b in range(n):
        for o in range(out):
            # Cross-correlation summed over input channels: what a CNN "convolution" is.
            y[b, :, :, o] = scipy.signal.correlate(x[b], kernel[..., o], mode="valid")[..., 0]
    return y[:, ::stride, ::stride]


@pytest.mark.parametrize("stride", [1, 2])
def test_matches_scipy(stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    assert_close(conv2d_valid(x, kernel, strides=stride), _scipy_conv(x, kernel, stride),
                 atol=1e-5, what=f"stride {stride}")


@pytest.mark.parametrize("stride", [1, 2])
def test_empty_batch_has_the_output_shape(stride):
    x = np.zeros((0, 9, 8, 3), np.float32)
    kernel = np.ones((3, 3, 3, 4), np.float32)
    expected = _scipy_conv(np.zeros((1, 9, 8, 3)), kernel, stride).shape[1:]
    assert to_numpy(conv2d_valid(x, kernel, strides=stride)).shape == (0, *expected)
