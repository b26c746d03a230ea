"""Modulated (and demodulated) convolution of StyleGAN2/3."""

import keras
from keras import ops

from keras_afgan.ops.conv import conv2d_transpose_stride2
from keras_afgan.ops.conv import conv2d_valid


def modulated_conv2d(x, weight, styles, demodulate=True, input_gain=None, padding=None, up=1):
    """Convolve each sample with the shared weight modulated by its styles.

    Steps: if demodulating, normalise the weight by its RMS per output channel
    and each sample's styles by their RMS; modulate the weight
    by the styles (input channels); if demodulating, scale each output
    channel by `rsqrt(sum w'^2 + 1e-8)`; multiply by `input_gain`; convolve
    with 'full' padding `k - 1`.

    Computed as a plain batched convolution: scale the input by the styles
    (and the input gain), convolve with the shared weight, scale the output by
    the demodulation coefficients. Mathematically identical to the grouped
    per-sample convolution and much cheaper on every backend.

    The reference pre-normalises the styles by one RMS over the whole batch.
    Demodulation cancels any scale of a sample's styles (up to its 1e-8), so
    the per-sample RMS gives the same images, and keeps samples apart: one
    sample's NaN or infinity no longer turns the whole batch into NaN (a
    served batch holds other users' requests).

    Args:
        x: `[N, H, W, I]`.
        weight: `[k, k, I, O]` convolution weight.
        styles: `[N, I]`.
        demodulate: whether to (pre-)normalise and demodulate.
        input_gain: `None` or a scalar multiplying the input.
        padding: zero padding on every side (`None`: `k - 1`); only with `up=1`.
        up: 1, or 2 for the transposed convolution with stride 2.

    Returns:
        `[N, H + 2 p - k + 1, W + 2 p - k + 1, O]` with `up=1`;
        `[N, 2 (H - 1) + k, 2 (W - 1) + k, O]` with `up=2`.
    """
    if up not in (1, 2):
        raise ValueError(f"Expected up to be 1 or 2. Received: up={up!r}")
    if up == 2 and padding is not None:
        raise ValueError(f"Expected padding=None with up=2. Received: padding={padding!r}")
    # The weight's normalisation, the styles and the demodulation coefficients
    # are computed in float32 whatever the input's dtype (as the reference
    # does under mixed precision); only the products with x and the
    # convolution run in x's dtype.
    weight = ops.cast(weight, "float32")
    styles = ops.cast(styles, "float32")
    k = int(weight.shape[0])
    if demodulate:
        weight = weight * ops.rsqrt(ops.mean(ops.square(weight), axis=(0, 1, 2), keepdims=True))
        styles = styles * ops.rsqrt(ops.mean(ops.square(styles), axis=-1, keepdims=True))
        wsq = ops.sum(ops.square(weight), axis=(0, 1))  # [I, O]
        dcoefs = ops.rsqrt(ops.matmul(ops.square(styles), wsq) + 1e-8)  # [N, O]
    scale = styles if input_gain is None else styles * ops.cast(input_gain, "float32")
    x = x * ops.cast(scale, x.dtype)[:, None, None, :]
    weight = ops.cast(weight, x.dtype)
    pad = k - 1 if padding is None else int(padding)
    if up == 2:
        x = conv2d_transpose_stride2(x, weight)
    elif k == 1 and pad == 0:
        x = ops.einsum("nhwi,io->nhwo", x, weight[0, 0])
    elif keras.config.backend() == "torch" and pad == k - 1:
        from keras_afgan.ops import torch_kernels

        x = torch_kernels.conv2d_full(x, weight)  # no layout copies
    else:
        x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        x = conv2d_valid(x, weight)
    if demodulate:
        x = x * ops.cast(dcoefs, x.dtype)[:, None, None, :]
    return x
