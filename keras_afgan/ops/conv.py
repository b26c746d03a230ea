"""A 'valid' 2-D convolution that is right for an empty batch on every backend."""

from keras import ops


def conv2d_valid(x, kernel, strides=1):
    """`keras.ops.conv(x, kernel, strides, padding="valid")`, NHWC.

    Args:
        x: `[N, H, W, I]`.
        kernel: `[k, k, I, O]`.
        strides: integer stride.

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
    return ops.conv(x, kernel, strides=strides, padding="valid")


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
