"""conv2d_valid against scipy, and on an empty batch (which TensorFlow's
oneDNN convolution answers with the input's height and width); on JAX, its
own gradient rules against JAX's autodiff of lax's convolution."""

import keras
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


@pytest.mark.parametrize("stride,k,shape", [(1, 3, (2, 9, 8, 3)), (2, 3, (2, 11, 10, 3)),
                                            (1, 1, (2, 5, 6, 3)), (2, 1, (1, 7, 7, 2))])
def test_jax_gradients_of_every_order_match_xla_autodiff(stride, k, shape):
    # JAX only, by nature: there the convolution carries its own gradient
    # rules (matrix products for the weight gradient, which R1's double
    # backward differentiates again); JAX's autodiff of lax's convolution is
    # the independent reference.
    if keras.config.backend() != "jax":
        pytest.skip("the custom gradient exists on JAX only; other backends use their own")
    import jax
    import jax.numpy as jnp

    from keras_afgan.ops.conv import _jax_native_conv

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal(shape), "float32")
    kernel = jnp.asarray(rng.standard_normal((k, k, shape[-1], 4)) * 0.3, "float32")
    weights = jnp.asarray(rng.standard_normal(conv2d_valid(x, kernel, stride).shape), "float32")
    assert_close(conv2d_valid(x, kernel, stride, double_backward=True),
                 conv2d_valid(x, kernel, stride), atol=1e-6, what="same values")

    def first(conv):
        return jax.grad(lambda x, w: jnp.sum(jnp.tanh(conv(x, w)) * weights), argnums=(0, 1))

    def r1(conv):  # R1's form: the weights' gradient of |d D / d x|^2
        def penalty(x, w):
            return jnp.sum(jax.grad(lambda x: jnp.sum(jnp.tanh(conv(x, w)) * weights))(x) ** 2)

        return jax.grad(penalty, argnums=(0, 1))

    def of_weight_gradient(conv):  # the weight gradient differentiated again
        def norm(x, w):
            return jnp.sum(jax.grad(lambda w: jnp.sum(jnp.tanh(conv(x, w)) * weights))(w) ** 2)

        return jax.grad(norm, argnums=(0, 1))

    ours = lambda x, w: conv2d_valid(x, w, strides=stride, double_backward=True)  # noqa: E731
    native = lambda x, w: _jax_native_conv(x, w, stride)  # noqa: E731
    for order, make in (("first", first), ("R1's second", r1),
                        ("weight gradient's", of_weight_gradient)):
        for name, a, b in zip(("x", "kernel"), make(ours)(x, kernel), make(native)(x, kernel)):
            scale = float(jnp.max(jnp.abs(b)))
            assert_close(np.asarray(a) / scale, np.asarray(b) / scale, atol=2e-5,
                         what=f"{order} derivative toward {name}, stride {stride}, k {k}")
