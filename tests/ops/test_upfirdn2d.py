"""upfirdn2d (both fast forms) and upfirdn2d_reference (slow) vs independent numpy."""

import functools

import numpy as np
import pytest
import scipy.signal
from keras import ops

from keras_afgan.ops import design_lowpass_filter
from keras_afgan.ops import upfirdn2d
from keras_afgan.ops import upfirdn2d_reference
from keras_afgan.ops.upfirdn2d import adjoint_polyphase_plan
from keras_afgan.ops.upfirdn2d import default_method
from keras_afgan.ops.upfirdn2d import inference_resampling
from keras_afgan.ops.upfirdn2d import polyphase_plan
from tests.ops.numpy_reference import upfirdn2d_np
from tests.testing import assert_close
from tests.testing import to_numpy

H, W = 11, 8  # non-square on purpose


def _filter(kind, seed=0):
    """Asymmetric random filters (a flipped filter gives a different result)."""
    rng = np.random.default_rng(seed)
    if kind.startswith("rand1d_"):
        taps = int(kind.split("_")[1])
        return (rng.normal(size=taps) + 0.3).astype(np.float32)
    if kind == "radial12":
        return design_lowpass_filter(12, 2.5, 9.0, 32.0, radial=True)
    if kind == "rand2d_5":
        return rng.normal(size=(5, 5)).astype(np.float32)
    if kind == "rand2d_3x6":  # [y, x]: more taps along x than along y
        return rng.normal(size=(3, 6)).astype(np.float32)
    raise ValueError(kind)


def _paddings(kind, ty, tx, up):
    """(x_lo, x_hi, y_lo, y_hi) of a kind, for ty x tx taps."""
    if kind == "full":  # scipy's 'full' upfirdn extent
        return (tx - 1, tx - up, ty - 1, ty - up)
    if kind == "asym":  # every side different
        return (tx // 2 + 1, (tx - 1) // 2 - 1, ty - 1, 2)
    if kind == "crop":  # crop both ends of both axes
        return (-1, -2, -3, -1)
    if kind == "mixed":  # crop one side, pad the other
        return (-2, tx, ty + 1, -1)
    raise ValueError(kind)


# Every implementation: the two forms of the fast path and the slow reference.
OPS = {
    "polyphase": functools.partial(upfirdn2d, method="polyphase"),
    "matrix": functools.partial(upfirdn2d, method="matrix"),
    "reference": upfirdn2d_reference,
}


def _out_size(in_size, taps, up, down, lo, hi):
    return (in_size * up + lo + hi - taps) // down + 1


PAD_KINDS = ("full", "asym", "crop", "mixed")
FILTER_KINDS = ("rand1d_4", "rand1d_12", "rand1d_24", "radial12", "rand2d_5", "rand2d_3x6")


def _cases():
    # Every (up, down) meets every filter, with two of the four padding kinds
    # in rotation, so every (up, down) and every filter also meets every
    # padding kind where the input is large enough (the full product is slow
    # to compile on JAX for little extra coverage).
    cases = []
    for i, (up, down) in enumerate([(u, d) for u in (1, 2, 4) for d in (1, 2)]):
        for j, fkind in enumerate(FILTER_KINDS):
            for pkind in (PAD_KINDS[(i + j) % 4], PAD_KINDS[(i + j + 2) % 4]):
                f = _filter(fkind)
                ty, tx = (f.shape[0], f.shape[0]) if f.ndim == 1 else f.shape
                pad = _paddings(pkind, ty, tx, up)
                if (_out_size(H, ty, up, down, pad[2], pad[3]) < 2
                        or _out_size(W, tx, up, down, pad[0], pad[1]) < 2):
                    continue  # this input is too small for the configuration
                cases.append(pytest.param(up, down, fkind, pad,
                                          id=f"up{up}-down{down}-{fkind}-{pkind}"))
    return cases


def _images(seed=1, n=2, h=H, w=W, c=3):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def _atol(x, f, gain):
    # Bound on |output| (sum |x f| over the taps) times a float32-sized epsilon.
    f = np.asarray(f, dtype=np.float64)
    f2 = np.outer(f, f) if f.ndim == 1 else f
    return 1e-6 * float(np.abs(x).max() * np.abs(f2).sum() * abs(gain))


@pytest.mark.parametrize("up,down,fkind,pad", _cases())
@pytest.mark.parametrize("path", list(OPS))
def test_matches_numpy(path, up, down, fkind, pad):
    op = OPS[path]
    f = _filter(fkind)
    gain = 1.5 * up**2
    x = _images()
    expected = upfirdn2d_np(x, f, up=up, down=down, padding=pad, gain=gain)
    ty, tx = (f.shape[0], f.shape[0]) if f.ndim == 1 else f.shape
    assert expected.shape == (2, _out_size(H, ty, up, down, pad[2], pad[3]),
                              _out_size(W, tx, up, down, pad[0], pad[1]), 3)
    y = op(ops.convert_to_tensor(x), f, up=up, down=down, padding=pad, gain=gain)
    assert_close(y, expected, atol=_atol(x, f, gain), what=f"{path} upfirdn2d")


@pytest.mark.parametrize("taps,up,down", [(4, 1, 1), (4, 2, 1), (12, 2, 2), (24, 4, 2),
                                          (12, 1, 2), (5, 3, 2)])
def test_matches_scipy_upfirdn(taps, up, down):
    # With padding (taps - 1, taps - up) per axis, upfirdn2d with a 1-D filter
    # equals scipy.signal.upfirdn ('full' convolution) applied along x then y,
    # each pass scaled by sqrt(gain).
    f = _filter(f"rand1d_{taps}", seed=3)
    gain = 2.0
    x = _images(seed=4, n=1, c=2)
    expected = scipy.signal.upfirdn(f * np.sqrt(gain), x.astype(np.float64), up, down, axis=2)
    expected = scipy.signal.upfirdn(f * np.sqrt(gain), expected, up, down, axis=1)
    pad = (taps - 1, taps - up, taps - 1, taps - up)
    for name, op in OPS.items():
        y = op(ops.convert_to_tensor(x), f, up=up, down=down, padding=pad, gain=gain)
        assert_close(y, expected, atol=_atol(x, f, gain), what=name)


def test_flipped_filter_differs():
    # Guard on the test itself: the random filters are asymmetric enough that
    # correlating instead of convolving would be caught by the tolerance.
    f = _filter("rand1d_12")
    x = _images()
    pad = (11, 10, 11, 10)
    good = upfirdn2d_np(x, f, up=2, padding=pad, gain=4.0)
    flipped = upfirdn2d_np(x, f[::-1], up=2, padding=pad, gain=4.0)
    assert np.abs(good - flipped).max() > 1000 * _atol(x, f, 4.0)
    for name, op in OPS.items():
        assert_close(op(ops.convert_to_tensor(x), f, up=2, padding=pad, gain=4.0), good,
                     atol=_atol(x, f, 4.0), what=name)


@pytest.mark.parametrize("padding,expanded", [(3, (3, 3, 3, 3)), ((2, -1), (2, 2, -1, -1)),
                                              ((1, 2, 3, 0), (1, 2, 3, 0))])
def test_padding_forms(padding, expanded):
    f = _filter("rand1d_4")
    x = _images(seed=5)
    expected = upfirdn2d_np(x, f, up=2, down=1, padding=expanded, gain=4.0)
    for name, op in OPS.items():
        y = op(ops.convert_to_tensor(x), f, up=2, padding=padding, gain=4.0)
        assert_close(y, expected, atol=_atol(x, f, 4.0), what=name)


def test_no_filter():
    # f=None: zero insertion, padding/cropping and decimation only.
    x = _images(seed=6)
    pad = (1, -2, 0, 3)
    expected = upfirdn2d_np(x, None, up=2, down=1, padding=pad, gain=1.0)
    for name, op in OPS.items():
        assert_close(op(ops.convert_to_tensor(x), None, up=2, padding=pad), expected, atol=1e-7,
                     what=name)
    # No resampling and no padding: a pure gain.
    assert_close(upfirdn2d(ops.convert_to_tensor(x), None, gain=0.5), 0.5 * x, atol=1e-7)
    assert_close(upfirdn2d(ops.convert_to_tensor(x), None), x, atol=0)


def test_single_tap_filter_with_gain():
    x = _images(seed=7)
    for f in (np.array([0.7], np.float32), np.array([-1.0], np.float32),
              np.array([[0.7]], np.float32)):
        expected = upfirdn2d_np(x, f, gain=3.0)
        for name, op in OPS.items():
            assert_close(op(ops.convert_to_tensor(x), f, gain=3.0), expected, atol=1e-6,
                         what=f"{name} {f.shape}")


def test_single_tap_filter_with_padding():
    # The same 1-tap filter through the general path: gain * f[0]**2 per sample.
    x = _images(seed=7)
    f = np.array([0.7], dtype=np.float32)
    pad = (0, 1, 1, 0)
    expected = upfirdn2d_np(x, f, padding=pad, gain=3.0)
    for name, op in OPS.items():
        assert_close(op(ops.convert_to_tensor(x), f, padding=pad, gain=3.0), expected, atol=1e-6,
                     what=name)


def test_separable_gain_applied_once():
    # A constant image through a DC-normalised filter keeps its level times
    # gain (away from the borders): a 1-D filter must not apply gain per axis.
    f = design_lowpass_filter(12, 2.0, 12.0, 32.0)
    x = np.ones((1, 16, 16, 1), dtype=np.float32)
    y = to_numpy(upfirdn2d(ops.convert_to_tensor(x), f, up=2, padding=(9, 8, 9, 8), gain=4.0))
    np.testing.assert_allclose(y[0, 12:-12, 12:-12, 0].mean(), 1.0, atol=1e-5)


def test_linearity():
    f = _filter("rand2d_5")
    x1, x2 = _images(seed=8), _images(seed=9)
    a, b = 0.7, -1.9
    kwargs = dict(up=2, down=2, padding=(3, 1, 2, 4), gain=4.0)
    combined = upfirdn2d(ops.convert_to_tensor(a * x1 + b * x2), f, **kwargs)
    separate = (a * to_numpy(upfirdn2d(ops.convert_to_tensor(x1), f, **kwargs))
                + b * to_numpy(upfirdn2d(ops.convert_to_tensor(x2), f, **kwargs)))
    assert_close(combined, separate, atol=3 * _atol(x1, f, 4.0))


def test_adjoint():
    # <A x, y> == <x, A^T y>, with A^T y built from the numpy form's impulse
    # responses: catches a fast path that is right on average but wrong per sample.
    f = _filter("rand1d_12")
    kwargs = dict(up=2, down=2, padding=(6, 5, 4, 7), gain=4.0)
    x = _images(seed=10, n=1, c=1)
    ax = to_numpy(upfirdn2d(ops.convert_to_tensor(x), f, **kwargs))
    y = np.random.default_rng(11).normal(size=ax.shape)
    eye = np.eye(H * W).reshape(H * W, H, W, 1)
    a = upfirdn2d_np(eye, f, **kwargs).reshape(H * W, -1)  # rows: impulse responses
    at_y = (a @ y.reshape(-1)).reshape(x.shape)
    np.testing.assert_allclose(np.sum(ax * y), np.sum(x * at_y), rtol=1e-5)


def _adjoint_matrix(f, x_shape, **kwargs):
    """A `[H*W, H'*W']`: row i is the numpy form's response to impulse i."""
    _, h, w, _ = x_shape
    eye = np.eye(h * w).reshape(h * w, h, w, 1)
    return upfirdn2d_np(eye, f, **kwargs).reshape(h * w, -1)


GRADIENT_CASES = [
    pytest.param("rand1d_12", dict(up=2, padding=(6, 5, 4, 7), gain=4.0), id="up2"),
    pytest.param("rand1d_12", dict(down=2, padding=(3, 1, 2, 4)), id="down2"),
    pytest.param("radial12", dict(up=2, down=2, padding=(5, 6, 5, 6), gain=4.0), id="radial"),
]


@pytest.mark.parametrize("fkind,kwargs", GRADIENT_CASES)
@pytest.mark.parametrize("method", ["polyphase", "matrix"])
def test_gradient_and_double_backward(method, fkind, kwargs):
    """d<y, A x>/dx = A^T y, and the gradient of |A^T y|^2 / 2 w.r.t. y,
    through that first gradient (R1's double backward), is A A^T y.

    The polyphase form has its own gradient on JAX (the transposed map in
    polyphase form, whose own gradient is the map again) and TensorFlow
    (the transposed matrices); the other forms are differentiated by the
    backend. Expected values from the numpy form's impulse responses.
    """
    import keras

    from keras_afgan.training.steps import backend_module

    steps = backend_module()
    f = _filter(fkind)
    x = _images(seed=12, n=1, c=1)
    a = _adjoint_matrix(f, x.shape, **kwargs)
    y_value = np.random.default_rng(13).normal(size=(1,) + upfirdn2d_np(
        x, f, **kwargs).shape[1:]).astype(np.float32)
    y = keras.Variable(y_value, name="y")

    def inner(x):
        return ops.sum(upfirdn2d(x, f, method=method, **kwargs) * y), ()

    def outer():
        grad, _ = steps.input_gradient(inner, ops.convert_to_tensor(x))
        return ops.sum(ops.square(grad)) / 2, grad

    _, grad, (grad_y,) = steps.value_and_grad(outer, [y])
    at_y = a @ y_value.reshape(-1).astype(np.float64)
    scale = float(np.abs(a).sum(axis=0).max() * np.abs(y_value).max())
    assert_close(grad, at_y.reshape(x.shape), atol=1e-5 * scale, what="A^T y")
    a_at_y = (a.T @ at_y).reshape(y_value.shape)
    assert_close(grad_y, a_at_y, atol=1e-5 * scale * np.abs(a).sum(axis=1).max(),
                 what="A A^T y")


@pytest.mark.parametrize("in_size,taps,up,down,lo,hi", [
    (38, 12, 2, 1, 9, 8),  # t32 L0 up side
    (82, 12, 1, 2, 0, 0),  # t32 L0 down side
    (38, 24, 4, 1, -6, -9),  # t32 L5 up side
    (7, 4, 1, 2, 1, 2),
])
def test_output_shape(in_size, taps, up, down, lo, hi):
    f = _filter(f"rand1d_{taps}")
    x = np.zeros((1, in_size, in_size + 3, 1), dtype=np.float32)
    y = upfirdn2d(ops.convert_to_tensor(x), f, up=up, down=down, padding=(lo, hi + 1, lo, hi))
    expected_h = (in_size * up + lo + hi - taps) // down + 1
    expected_w = ((in_size + 3) * up + lo + hi + 1 - taps) // down + 1
    assert tuple(y.shape) == (1, expected_h, expected_w, 1)


@pytest.mark.parametrize("in_size,taps,up,pad", [(4, 12, 1, 0), (8, 12, 1, (-2, 0, 0, 0)),
                                                  (3, 24, 2, (-5, -5, 0, 0))])
def test_empty_output_raises(in_size, taps, up, pad):
    x = ops.zeros((1, in_size, in_size, 1))
    with pytest.raises(ValueError):
        upfirdn2d(x, _filter(f"rand1d_{taps}"), up=up, padding=pad)


def test_bad_arguments_raise():
    x = ops.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match="padding"):
        upfirdn2d(x, _filter("rand1d_4"), padding=(1, 2, 3))
    with pytest.raises(ValueError, match="filter"):
        upfirdn2d(x, np.ones((2, 2, 2)), padding=2)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="Expected method in .*Received: method='fft'"):
        upfirdn2d(ops.convert_to_tensor(_images()), _filter("rand1d_4"), up=2, method="fft")


def test_polyphase_plan_multiplies_only_the_taps_that_meet_samples():
    # Upsampling by 4 with 24 taps: each output sees 24 / 4 = 6 input samples,
    # the dense form would touch all of them.
    f = _filter("rand1d_24")
    out_size, stride, _, _, phases = polyphase_plan(16, f, up=4, pad_lo=13, pad_hi=10)
    assert (out_size, stride, len(phases)) == (_out_size(16, 24, 4, 1, 13, 10), 1, 4)
    assert all(len(terms) == 6 for _, terms in phases)


@pytest.mark.parametrize("in_size,taps,up,down,lo,hi", [
    (86, 12, 2, 1, 9, 8),  # 64 px T, L9 up side
    (178, 12, 1, 2, 0, 0),  # its down side
    (54, 24, 4, 1, -6, -9),  # L8 up side (cropping)
    (86, 12, 1, 2, -11, -12),  # cropping on a down side
    (20, 6, 3, 2, 1, 4),  # up and down at once, coprime
    (7, 3, 1, 3, -1, 2),
])
def test_adjoint_polyphase_plan_is_the_transposed_matrix(in_size, taps, up, down, lo, hi):
    """The transposed map's plan (JAX's gradient of the polyphase form), run
    sample by sample in plain Python, against the transposed map from the
    numpy form's impulse responses (a `[taps, 1]` filter: height only)."""
    f = np.random.default_rng(taps + in_size).normal(size=taps)
    impulses = np.eye(in_size).reshape(in_size, in_size, 1, 1)
    responses = upfirdn2d_np(impulses, f[:, None], up, down, (0, 0, lo, hi), gain=3.0)
    matrix = responses[:, :, 0, 0].T  # [out, in]: the forward map
    out_size, stride, pad_left, pad_right, phases = adjoint_polyphase_plan(
        in_size, f, up, down, lo, hi, gain=3.0)
    assert out_size == in_size
    transposed = np.zeros((in_size, matrix.shape[0]))
    for i in range(matrix.shape[0]):
        padded = np.concatenate([np.zeros(pad_left), np.eye(matrix.shape[0])[i],
                                 np.zeros(pad_right)])
        for r, (count, terms) in enumerate(phases):
            for q in range(count):
                j = q * len(phases) + r
                if j < out_size:
                    transposed[j, i] = sum(coef * padded[pad_left + offset + q * stride]
                                           for offset, coef in terms)
    np.testing.assert_allclose(transposed, matrix.T, rtol=1e-12, atol=1e-12)


def test_environment_overrides_the_default_method(monkeypatch):
    x = ops.zeros((1, 4, 4, 1))
    for method in ("polyphase", "matrix"):
        monkeypatch.setenv("KERAS_AFGAN_RESAMPLING", method)
        assert default_method(x) == method
    monkeypatch.setenv("KERAS_AFGAN_RESAMPLING", "fft")
    with pytest.raises(ValueError, match="KERAS_AFGAN_RESAMPLING in .*Received: 'fft'"):
        default_method(x)


def test_default_method_follows_execution_mode(monkeypatch):
    monkeypatch.delenv("KERAS_AFGAN_RESAMPLING", raising=False)
    # Op by op the banded matrices; under JAX's jit and torch.compile the
    # polyphase slices (which they fuse). TensorFlow keeps the matrices under
    # XLA unless told that no gradient will be taken (`inference_resampling`,
    # as in `predict`), and always in plain graphs. Each backend's own compiler.
    import keras

    x = ops.zeros((1, 4, 4, 1))
    assert default_method(x) == "matrix"
    seen = []

    def fn(t):
        seen.append(default_method(t))
        return t + 1

    backend = keras.config.backend()
    if backend == "jax":
        import jax

        jax.jit(fn)(x)
        # bfloat16 keeps the matrices: XLA's CPU bfloat16 slices are slow.
        jax.jit(fn)(ops.cast(x, "bfloat16"))
        expected = ["polyphase", "matrix"]
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.function(fn, jit_compile=True)(x)
        tf.function(fn, jit_compile=False)(x)
        with inference_resampling():
            tf.function(fn, jit_compile=True)(x)
            tf.function(fn, jit_compile=False)(x)
            fn(x)
            # bfloat16 keeps the matrices there too, as on JAX.
            tf.function(fn, jit_compile=True)(ops.cast(x, "bfloat16"))
        expected = ["matrix", "matrix", "polyphase", "matrix", "matrix", "matrix"]
    else:
        import torch

        torch.compile(fn)(x)
        expected = ["polyphase"]
    assert seen == expected
