"""The torch CPU inference path of `filtered_lrelu` (`keras_afgan/ops/torch_kernels.py`).

Backend-specific by nature: the path exists only on torch (it runs where torch
records no gradient). On TensorFlow and JAX this module checks that the path is
never taken. The golden generator runs through it in
`tests/test_golden.py::test_generator_end_to_end`.
"""

import math

import keras
import numpy as np
import pytest

from keras_afgan.models.sampling import inference_scope
from keras_afgan.ops import filtered_lrelu
from tests.ops.test_filtered_lrelu import CASES
from tests.ops.test_filtered_lrelu import _abs_sum_2d
from tests.ops.test_filtered_lrelu import _filtered_lrelu_np
from tests.testing import assert_close

TORCH = keras.config.backend() == "torch"


@pytest.fixture
def calls(monkeypatch):
    """How often the inference path ran (on torch; always 0 elsewhere)."""
    count = [0]
    if TORCH:
        from keras_afgan.ops import torch_kernels

        original = torch_kernels.filtered_lrelu_inference

        def counted(*args, **kwargs):
            count[0] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(torch_kernels, "filtered_lrelu_inference", counted)
    return count


def _inputs(in_size, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    x = (2 * rng.normal(size=(3, in_size, in_size - 2, 4))).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    return x, b


@pytest.mark.parametrize("name,in_size,out_size,up,down,fu,fd,padding", CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.parametrize("gain,slope,clamp", [(math.sqrt(2), 0.2, 0.7), (1.3, 0.0, 0.4),
                                               (0.8, 0.3, None)])
def test_inference_matches_numpy(calls, name, in_size, out_size, up, down, fu, fd, padding,
                                 gain, slope, clamp):
    # Clamps low enough to cut many samples on both sides, slope 0 (the ReLU,
    # no lower bound) and no clamp; 1-D and radial (2-D) down filters.
    x, b = _inputs(in_size)
    expected = _filtered_lrelu_np(x, fu, fd, b, up, down, padding, gain, slope, clamp)
    with inference_scope():
        y = filtered_lrelu(keras.ops.convert_to_tensor(x), fu, fd, keras.ops.convert_to_tensor(b),
                           up=up, down=down, padding=padding, gain=gain, slope=slope,
                           clamp=clamp)
    bound = np.abs(x + b).max() * up**2 * _abs_sum_2d(fu) * gain * _abs_sum_2d(fd)
    assert_close(y, expected, atol=1e-6 * bound, what=name)
    assert calls[0] == (1 if TORCH else 0)


def test_recording_gradients_takes_the_keras_ops_form(calls):
    name, in_size, _, up, down, fu, fd, padding = CASES[0]
    x, b = _inputs(in_size, seed=1)
    expected = _filtered_lrelu_np(x, fu, fd, b, up, down, padding, math.sqrt(2), 0.2, 0.5)
    if TORCH:
        import torch

        xt = torch.tensor(x, requires_grad=True)
        y = filtered_lrelu(xt, fu, fd, torch.tensor(b), up=up, down=down, padding=padding,
                           clamp=0.5)
        y.sum().backward()
        assert xt.grad is not None and float(xt.grad.abs().sum()) > 0
    else:
        y = filtered_lrelu(keras.ops.convert_to_tensor(x), fu, fd, keras.ops.convert_to_tensor(b),
                           up=up, down=down, padding=padding, clamp=0.5)
    assert calls[0] == 0
    bound = np.abs(x + b).max() * up**2 * _abs_sum_2d(fu) * math.sqrt(2) * _abs_sum_2d(fd)
    assert_close(y.detach() if TORCH else y, expected, atol=1e-6 * bound)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_inputs(calls, dtype):
    # The path computes in float32 and returns the input's dtype. Expected:
    # the float64 chain on the input as `filtered_lrelu` sees it (the bias
    # added in `dtype`). Tolerance: the output's rounding, plus (TF, JAX) the
    # rounding of the clamped activations before the down filter.
    name, in_size, _, up, down, fu, fd, padding = CASES[2]
    x, b = _inputs(in_size, seed=2)
    x16 = keras.ops.cast(keras.ops.convert_to_tensor(x), dtype)
    b16 = keras.ops.cast(keras.ops.convert_to_tensor(b), dtype)
    seen = keras.ops.convert_to_numpy(keras.ops.cast(x16 + b16, "float32"))
    clamp = 1.0
    expected = _filtered_lrelu_np(seen, fu, fd, None, up, down, padding, math.sqrt(2), 0.2, clamp)
    with inference_scope():
        y = filtered_lrelu(x16, fu, fd, b16, up=up, down=down, padding=padding, clamp=clamp)
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    eps = {"bfloat16": 2.0**-8, "float16": 2.0**-11}[dtype]
    assert_close(keras.ops.cast(y, "float32"), expected, rtol=eps,
                 atol=2 * eps * clamp * _abs_sum_2d(fd), what=dtype)
    assert calls[0] == (1 if TORCH else 0)
