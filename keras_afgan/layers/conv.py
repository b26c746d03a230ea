"""Equalized-learning-rate convolution with optional 2x FIR down- or upsampling."""

import math

import keras

from keras_afgan.ops.bias_act import ACTIVATIONS
from keras_afgan.ops.bias_act import bias_act
from keras_afgan.ops.bias_act import default_gain
from keras_afgan.ops.conv import conv2d_valid
from keras_afgan.ops.filter_design import resample_filter_1d
from keras_afgan.ops.upfirdn2d import upfirdn2d


@keras.saving.register_keras_serializable(package="keras_afgan")
class EqualizedConv2D(keras.layers.Layer):
    """Conv layer of the StyleGAN2 networks (NHWC, 'same' size, /2 or x2).

    The kernel `[k, k, in, out]` is multiplied at run time by
    `1 / sqrt(in * k * k)`. With `down=2`, the input is first low-passed with
    the binomial filter [1, 3, 3, 1] / 8 (separable): a 1x1 conv filters with
    decimation then convolves; a kxk conv filters without decimation, then
    convolves with stride 2. With `up=2` (1x1 only: the StyleGAN2
    generator's residual skips), the input is zero-inserted and filtered
    with the same filter times 4, then convolved. The convolutions are
    marked `double_backward` (the discriminator's: R1 differentiates them
    twice; see `keras_afgan.ops.conv`).

    Args:
        filters: output channels.
        kernel_size: 1 or odd.
        activation: "linear" or "lrelu".
        use_bias: whether to add a bias.
        down: 1 or 2.
        up: 1 or 2 (2 only with `kernel_size=1` and `down=1`).
        conv_clamp: clamp of the activation output, or `None`.
    """

    def __init__(self, filters, kernel_size, activation="linear", use_bias=True, down=1,
                 conv_clamp=None, up=1, **kwargs):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"Expected activation in {ACTIVATIONS}. Received: {activation!r}")
        if down not in (1, 2):
            raise ValueError(f"Expected down to be 1 or 2. Received: {down!r}")
        if up not in (1, 2) or (up == 2 and (kernel_size != 1 or down != 1)):
            raise ValueError(
                f"Expected up to be 1, or 2 with kernel_size=1 and down=1. Received: up={up!r}, "
                f"kernel_size={kernel_size!r}, down={down!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.use_bias = use_bias
        self.down = int(down)
        self.up = int(up)
        self.conv_clamp = conv_clamp
        self.resample_filter = resample_filter_1d()

    def build(self, input_shape):
        in_channels = int(input_shape[-1])
        k = self.kernel_size
        self.weight_gain = 1 / math.sqrt(in_channels * k * k)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, x, gain=1.0):
        ops = keras.ops
        w = self.kernel * self.weight_gain
        k = self.kernel_size
        if self.up == 2:
            taps = len(self.resample_filter)
            lo, hi = (taps + 1) // 2, (taps - 2) // 2
            x = upfirdn2d(x, self.resample_filter, up=2, padding=(lo, hi, lo, hi), gain=4)
            x = ops.einsum("nhwi,io->nhwo", x, w[0, 0])
        elif self.down == 1:
            if k > 1:
                x = ops.pad(x, [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]])
            x = conv2d_valid(x, w, double_backward=True)
        else:
            taps = len(self.resample_filter)
            lo = k // 2 + (taps - self.down + 1) // 2
            hi = k // 2 + (taps - self.down) // 2
            if k == 1:
                x = upfirdn2d(x, self.resample_filter, down=self.down, padding=(lo, hi, lo, hi))
                x = ops.einsum("nhwi,io->nhwo", x, w[0, 0])
            else:
                x = upfirdn2d(x, self.resample_filter, padding=(lo, hi, lo, hi))
                x = conv2d_valid(x, w, strides=self.down, double_backward=True)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, activation=self.activation,
                        gain=default_gain(self.activation) * gain, clamp=clamp)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "down": self.down,
            "up": self.up,
            "conv_clamp": self.conv_clamp,
        })
        return config
