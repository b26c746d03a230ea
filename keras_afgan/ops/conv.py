"""A 'valid' 2-D convolution that is right for an empty batch on every backend.

On JAX, a convolution that will be differentiated twice (`double_backward`:
the discriminator's, under R1) carries its own gradient rules
(`_jax_conv_with_gradient`): XLA's CPU code for the weight gradients that
R1's double backward needs ran at ~2 GFLOP/s (3.9 s of a 64 px train step
for one 64 px layer); as these rules (matrix products for the weight
gradient, convolutions for the rest) ~10x faster. Where only a first
derivative follows (the generator's), XLA's own rules are faster: the 64 px
train step took 12.6 s with the rules everywhere, 9.8 s with them in D only
(BUILD_NOTES.md, "Speed").
"""

import functools

import keras
from keras import ops


def conv2d_valid(x, kernel, strides=1, double_backward=False):
    """`keras.ops.conv(x, kernel, strides, padding="valid")`, NHWC.

    Args:
        x: `[N, H, W, I]`.
        kernel: `[k, k, I, O]`.
        strides: integer stride.
        double_backward: whether a second derivative will be taken through
            this convolution (R1 on the discriminator). Same values either
            way; on JAX it picks the gradient rules that are fast there (see
            the module doc).

    Returns:
        `[N, (H - k) // strides + 1, (W - k) // strides + 1, O]`. For a batch
        known to be empty, zeros of that shape: TensorFlow's oneDNN
        convolution (on by default on CPUs with AVX-512 VNNI/BF16) answers
        an empty batch with the input's height and width.
    """
    if x.shape[0] == 0:
        k, out = int(kernel.shape[0]), int(kernel.shape[-1])
        h, w = (int(x.shape[1]) - k) // strides + 1, (int(x.shape[2]) - k) // strides + 1
        return ops.zeros((0, h, w, out), x.dtype)
    if double_backward and keras.config.backend() == "jax":
        return _jax_conv(x, kernel, int(strides))
    return ops.conv(x, kernel, strides=strides, padding="valid")


def _jax_native_conv(x, kernel, stride):
    from jax import lax

    return lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.cache
def _jax_conv_with_gradient():
    """The custom-gradient convolution `conv(x, kernel, stride)` (JAX).

    Its derivatives of every order are again `conv`, its `weight_gradient`
    (k^2 matrix products, with a rule of its own), pads and slices: never
    XLA's own weight-gradient convolution."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def input_gradient(dy, kernel, x_shape, stride):
        # The zero-inserted (stride) dy, padded 'full', correlated with the
        # flipped kernel with in/out swapped.
        k, (_, h, w, _), (_, p, q, _) = int(kernel.shape[0]), x_shape, dy.shape
        zero = jnp.zeros((), dy.dtype)
        dy_full = lax.pad(dy, zero, ((0, 0, 0), (k - 1, h - stride * (p - 1) - 1, stride - 1),
                                     (k - 1, w - stride * (q - 1) - 1, stride - 1), (0, 0, 0)))
        return conv(dy_full, jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)), 1)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
    def conv(x, kernel, stride):
        return _jax_native_conv(x, kernel, stride)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
    def weight_gradient(x, dy, k, stride):
        # dW[a, b] = sum_(n, p, q) x[n, s p + a, s q + b, :]^T dy[n, p, q, :]: k^2
        # matrix products. (XLA's own weight-gradient convolution ran at ~2
        # GFLOP/s inside the train step, 5 s for D's 64 px layer.)
        _, p, q, o = dy.shape
        dy = dy.reshape(-1, o)
        taps = []
        for a in range(k):
            for b in range(k):
                xs = x[:, a:a + stride * (p - 1) + 1:stride, b:b + stride * (q - 1) + 1:stride]
                taps.append(lax.dot_general(xs.reshape(-1, x.shape[-1]), dy,
                                            (((0,), (0,)), ((), ()))))
        return jnp.stack(taps).reshape(k, k, x.shape[-1], o)

    def weight_gradient_forward(x, dy, k, stride):
        return weight_gradient(x, dy, k, stride), (x, dy)

    def weight_gradient_backward(k, stride, residuals, g):
        # dW is bilinear in (x, dy): its derivative toward dy is the
        # convolution of x with g, toward x the input gradient of that
        # convolution. Used where dW itself is differentiated (not by R1,
        # which differentiates the input gradient); without it JAX would
        # differentiate the slices into pads and scatters.
        x, dy = residuals
        return input_gradient(dy, g, x.shape, stride), conv(x, g, stride)

    weight_gradient.defvjp(weight_gradient_forward, weight_gradient_backward)

    def forward(x, kernel, stride):
        # Through `conv` itself: a second derivative (R1's) also differentiates
        # this forward pass, and must meet these rules there too.
        return conv(x, kernel, stride), (x, kernel)

    def backward(stride, residuals, dy):
        x, kernel = residuals
        dx = input_gradient(dy, kernel, x.shape, stride)
        dw = weight_gradient(x, dy, int(kernel.shape[0]), stride)
        return dx, dw.astype(kernel.dtype)

    conv.defvjp(forward, backward)
    return conv


def _jax_conv(x, kernel, stride):
    return _jax_conv_with_gradient()(x, kernel, stride)


def conv2d_transpose_stride2(x, kernel):
    """Zero-insert `x` 2x, then convolve (true convolution, 'full') with `kernel`, NHWC.

    The transposed convolution with stride 2 and no padding: input sample
    `i` adds `x[i] * kernel[m]` to output sample `2 i + m`. This is the
    first half of StyleGAN2's 2x-upsampling convolution (a FIR filter
    follows).

    Args:
        x: `[N, H, W, I]`.
        kernel: `[k, k, I, O]`.

    Returns:
        `[N, 2 (H - 1) + k, 2 (W - 1) + k, O]`; zeros of that shape for a
        batch known to be empty (see `conv2d_valid`).
    """
    k, out = int(kernel.shape[0]), int(kernel.shape[-1])
    if x.shape[0] == 0:
        h, w = 2 * (int(x.shape[1]) - 1) + k, 2 * (int(x.shape[2]) - 1) + k
        return ops.zeros((0, h, w, out), x.dtype)
    # keras.ops.conv_transpose takes the kernel as [k, k, out, in].
    return ops.conv_transpose(x, ops.transpose(kernel, (0, 1, 3, 2)), strides=2,
                              padding="valid")
