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
