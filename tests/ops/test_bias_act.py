"""bias_act vs numpy."""

import math

import numpy as np
import pytest
from keras import ops

from keras_afgan.ops import bias_act
from tests.ops.numpy_reference import lrelu_np
from tests.testing import assert_close


def _bias_act_np(x, b, activation, alpha, gain, clamp):
    y = x.astype(np.float64)
    if b is not None:
        y = y + b
    if activation == "lrelu":
        y = lrelu_np(y, alpha)
    if gain is None:
        gain = math.sqrt(2) if activation == "lrelu" else 1.0
    y = y * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return y


@pytest.mark.parametrize("activation", ["linear", "lrelu"])
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("alpha,gain,clamp", [(0.2, None, None), (0.2, None, 0.8),
                                              (0.05, 1.7, None), (1.0, 0.5, 0.3),
                                              (0.2, 1.0, 256.0)])
def test_matches_numpy(activation, use_bias, alpha, gain, clamp):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 6)).astype(np.float32)
    b = rng.normal(size=(6,)).astype(np.float32) if use_bias else None
    expected = _bias_act_np(x, b, activation, alpha, gain, clamp)
    y = bias_act(ops.convert_to_tensor(x), None if b is None else ops.convert_to_tensor(b),
                 activation=activation, alpha=alpha, gain=gain, clamp=clamp)
    assert_close(y, expected, atol=1e-6, rtol=1e-6)


def test_default_gains():
    x = np.array([[-2.0, -0.5, 0.0, 0.25, 3.0]], dtype=np.float32)
    assert_close(bias_act(ops.convert_to_tensor(x), activation="lrelu"),
                 np.sqrt(2) * np.array([[-0.4, -0.1, 0.0, 0.25, 3.0]]), atol=1e-6)
    assert_close(bias_act(ops.convert_to_tensor(x)), x, atol=0)


def test_bias_is_per_channel():
    # The bias broadcasts over the last (channel) axis of NHWC.
    x = np.zeros((1, 2, 3, 4), dtype=np.float32)
    b = np.array([1.0, -2.0, 3.0, -4.0], dtype=np.float32)
    y = bias_act(ops.convert_to_tensor(x), ops.convert_to_tensor(b), activation="lrelu", gain=1.0)
    assert_close(y, np.broadcast_to(np.array([1.0, -0.4, 3.0, -0.8]), (1, 2, 3, 4)), atol=1e-7)


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        bias_act(ops.zeros((1, 2)), activation="relu")
