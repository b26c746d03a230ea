"""The paper's filtered nonlinearity (Alias-Free GAN, section 3.2)."""

import math

import keras
from keras import ops

from keras_afgan.ops.bias_act import bias_act
from keras_afgan.ops.upfirdn2d import upfirdn2d


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0,
                   gain=math.sqrt(2), slope=0.2, clamp=None):
    """Bias, upsample, leaky ReLU, low-pass filter and downsample.

    Steps: add bias `b`; `upfirdn2d(x, fu, up, padding, gain=up**2)` (the
    nonlinearity runs at a temporarily higher sampling rate); leaky ReLU with
    `slope`, times `gain`, clipped to `clamp`; `upfirdn2d(x, fd, down)` (the
    low-pass `fd` removes what the nonlinearity created above the new
    Nyquist limit before decimation).

    On torch, where no gradient is recorded on the CPU (`predict`,
    `torch.no_grad()`), the same op runs image by image in the cache
    (`keras_afgan.ops.torch_kernels`); everywhere else in keras.ops.

    Args:
        x: `[N, H, W, C]`.
        fu: 1-D up filter (numpy) or `None`.
        fd: 1-D or 2-D (radial) down filter (numpy) or `None`.
        b: `[C]` bias or `None`.
        up, down: integer resampling factors.
        padding: `(x_lo, x_hi, y_lo, y_hi)` applied after zero-insertion.
        gain, slope, clamp: of the leaky ReLU.
    """
    if b is not None:
        b = ops.cast(b, x.dtype)
    if (up > 1 or down > 1) and keras.config.backend() == "torch":
        # Torch inference on the CPU: the same op, image by image in cache.
        from keras_afgan.ops import torch_kernels

        if torch_kernels.applies(x, b, slope, gain):
            return torch_kernels.filtered_lrelu_inference(x, fu, fd, b, up, down, padding, gain,
                                                        slope, clamp)
    if b is not None:
        x = x + b
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    x = bias_act(x, activation="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down)
