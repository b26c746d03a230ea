"""filtered_lrelu vs an independent numpy chain (docs/design.md section 1)."""

import math

import numpy as np
import pytest
from keras import ops

from keras_afgan.ops import design_lowpass_filter
from keras_afgan.ops import filtered_lrelu
from tests.ops.numpy_reference import lrelu_np
from tests.ops.numpy_reference import upfirdn2d_np
from tests.testing import assert_close


def _filtered_lrelu_np(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    y = x.astype(np.float64)
    if b is not None:
        y = y + b
    y = upfirdn2d_np(y, fu, up=up, padding=padding, gain=up**2)
    y = lrelu_np(y, slope) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return upfirdn2d_np(y, fd, down=down)


def _abs_sum_2d(f):
    if f is None:
        return 1.0
    f = np.asarray(f, dtype=np.float64)
    return float(np.abs(np.outer(f, f) if f.ndim == 1 else f).sum())


def _rng_filters():
    rng = np.random.default_rng(7)
    return rng.normal(size=6).astype(np.float32) + 0.2, rng.normal(size=(4, 4)).astype(np.float32)


# (id, in size, expected out size, up, down, fu, fd, padding); the sizes and
# paddings are those of the golden cases' layers (t32: kernel 3, r32c: kernel 1).
CASES = [
    ("t32_L0", 38, 36, 2, 2, design_lowpass_filter(12, 2.0, 12.0, 32.0),
     design_lowpass_filter(12, 2.0, 12.0, 32.0), [9, 8, 9, 8]),
    ("t32_L5", 38, 52, 4, 2, design_lowpass_filter(24, 4.0, 8.0, 64.0),
     design_lowpass_filter(12, 4.756828460010884, 22.486343079978234, 64.0), [-6, -9, -6, -9]),
    ("t32_L13", 54, 32, 2, 2, design_lowpass_filter(12, 13.45, 11.1, 64.0),
     design_lowpass_filter(12, 16.0, 10.0, 64.0), [-11, -12, -11, -12]),
    ("r32c_L0", 36, 36, 2, 2, design_lowpass_filter(12, 2.0, 12.0, 32.0),
     design_lowpass_filter(12, 2.0, 12.0, 32.0, radial=True), [11, 10, 11, 10]),
    ("r32c_L5", 36, 52, 4, 2, design_lowpass_filter(24, 4.0, 8.0, 64.0),
     design_lowpass_filter(12, 4.756828460010884, 22.486343079978234, 64.0, radial=True),
     [-2, -5, -2, -5]),
    ("r32c_L13", 52, 32, 2, 2, design_lowpass_filter(12, 13.45, 11.1, 64.0),
     design_lowpass_filter(12, 16.0, 10.0, 64.0), [-9, -10, -9, -10]),
    # Asymmetric random filters and padding: a flip or an axis swap shows.
    ("random", 13, None, 2, 2, _rng_filters()[0], _rng_filters()[1], [3, 1, 2, 4]),
]


@pytest.mark.parametrize("name,in_size,out_size,up,down,fu,fd,padding", CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gain,slope,clamp", [(math.sqrt(2), 0.2, None), (1.3, 0.1, 0.4)])
def test_matches_numpy(name, in_size, out_size, up, down, fu, fd, padding, gain, slope, clamp):
    rng = np.random.default_rng(0)
    w = in_size - 3 if name == "random" else in_size  # non-square for the random case
    x = rng.normal(size=(2, in_size, w, 3)).astype(np.float32)
    b = rng.normal(size=(3,)).astype(np.float32)
    expected = _filtered_lrelu_np(x, fu, fd, b, up, down, padding, gain, slope, clamp)
    if out_size is not None:
        assert expected.shape == (2, out_size, out_size, 3)
    y = filtered_lrelu(ops.convert_to_tensor(x), fu, fd, ops.convert_to_tensor(b), up=up,
                       down=down, padding=padding, gain=gain, slope=slope, clamp=clamp)
    bound = np.abs(x + b).max() * up**2 * _abs_sum_2d(fu) * gain * _abs_sum_2d(fd)
    assert_close(y, expected, atol=1e-6 * bound, what=name)


def test_torgb_form():
    # ToRGB: no filters, no resampling, slope 1 and gain 1: bias then clamp.
    rng = np.random.default_rng(1)
    x = (3 * rng.normal(size=(2, 9, 7, 3))).astype(np.float32)
    b = rng.normal(size=(3,)).astype(np.float32)
    y = filtered_lrelu(ops.convert_to_tensor(x), b=ops.convert_to_tensor(b), gain=1, slope=1,
                       clamp=2.5)
    assert_close(y, np.clip(x.astype(np.float64) + b, -2.5, 2.5), atol=1e-6)


def test_no_bias():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 10, 10, 2)).astype(np.float32)
    fu, fd = _rng_filters()
    expected = _filtered_lrelu_np(x, fu, fd, None, 2, 2, [2, 3, 3, 2], math.sqrt(2), 0.2, None)
    y = filtered_lrelu(ops.convert_to_tensor(x), fu, fd, up=2, down=2, padding=[2, 3, 3, 2])
    bound = np.abs(x).max() * 4 * _abs_sum_2d(fu) * math.sqrt(2) * _abs_sum_2d(fd)
    assert_close(y, expected, atol=1e-6 * bound)
