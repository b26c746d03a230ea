"""One layer of the alias-free synthesis network."""

import math

import keras
from keras import ops

from keras_afgan.layers.dense import EqualizedDense
from keras_afgan.layers.statistics import batch_mean
from keras_afgan.ops.filter_design import design_lowpass_filter
from keras_afgan.ops.filtered_lrelu import filtered_lrelu
from keras_afgan.ops.modulated_conv import modulated_conv2d


@keras.saving.register_keras_serializable(package="keras_afgan")
class SynthesisLayer(keras.layers.Layer):
    """Modulated conv followed by the filtered leaky ReLU (or ToRGB).

    Steps: with `update_emas`, move `magnitude_ema` toward `mean(x^2)`;
    input gain `rsqrt(magnitude_ema)`; styles from w through a dense layer
    (bias 1); modulated conv (demodulated, kernel `conv_kernel`, 'full'
    padding); `filtered_lrelu` with the up filter (f_c, f_h of the input side,
    at the temporary rate) and the down filter (output side; radial for
    config R's non-critical layers). ToRGB: 1x1 conv, styles times
    `1 / sqrt(in_channels)`, no demodulation, no filters, slope 1, gain 1.

    Under a mixed dtype policy the convolution and the nonlinearity run in
    the compute dtype; the styles (the affine layer), the weight's
    normalisation and the (de)modulation coefficients stay float32, as in
    the reference. Which layers get a mixed policy is the synthesis
    network's choice (`num_fp16_res`).

    The arguments are those of `keras_afgan.models.specs.LayerSpec`; the
    filters and padding are derived from them.
    """

    def __init__(self, w_dim, in_channels, out_channels, in_size, out_size,
                 in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff,
                 in_half_width, out_half_width, is_torgb=False, is_critically_sampled=False,
                 conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256, magnitude_ema_beta=0.999, **kwargs):
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.in_size = int(in_size)
        self.out_size = int(out_size)
        self.in_sampling_rate = float(in_sampling_rate)
        self.out_sampling_rate = float(out_sampling_rate)
        self.in_cutoff = float(in_cutoff)
        self.out_cutoff = float(out_cutoff)
        self.in_half_width = float(in_half_width)
        self.out_half_width = float(out_half_width)
        self.is_torgb = bool(is_torgb)
        self.is_critically_sampled = bool(is_critically_sampled)
        self.conv_kernel = int(conv_kernel)
        self.filter_size = int(filter_size)
        self.lrelu_upsampling = int(lrelu_upsampling)
        self.use_radial_filters = bool(use_radial_filters)
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = float(magnitude_ema_beta)

        self.kernel_size = 1 if self.is_torgb else self.conv_kernel
        self.tmp_sampling_rate = max(self.in_sampling_rate, self.out_sampling_rate) * (
            1 if self.is_torgb else self.lrelu_upsampling)
        self.up_factor = int(round(self.tmp_sampling_rate / self.in_sampling_rate))
        self.down_factor = int(round(self.tmp_sampling_rate / self.out_sampling_rate))
        up_taps = self.filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        down_taps = (self.filter_size * self.down_factor
                     if self.down_factor > 1 and not self.is_torgb else 1)
        self.down_radial = self.use_radial_filters and not self.is_critically_sampled
        self.up_filter = design_lowpass_filter(
            up_taps, self.in_cutoff, 2 * self.in_half_width, self.tmp_sampling_rate)
        self.down_filter = design_lowpass_filter(
            down_taps, self.out_cutoff, 2 * self.out_half_width, self.tmp_sampling_rate,
            radial=self.down_radial)
        total = ((self.out_size - 1) * self.down_factor + 1
                 - (self.in_size + self.kernel_size - 1) * self.up_factor
                 + up_taps + down_taps - 2)
        lo = (total + self.up_factor) // 2
        self.padding = (lo, total - lo, lo, total - lo)
        self.affine = EqualizedDense(self.in_channels, bias_init=1.0,
                                     dtype=self.dtype_policy.variable_dtype, name="affine")

    def build(self, input_shape=None):
        self.affine.build((None, self.w_dim))
        k = self.kernel_size
        # Read in float32 (not autocast): the modulation math needs it.
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0), autocast=False,
        )
        self.bias = self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros")
        self.magnitude_ema = self.add_weight(
            name="magnitude_ema", shape=(), initializer="ones", trainable=False, autocast=False,
        )

    @property
    def input_dtype(self):
        # w reaches the (float32) affine layer unrounded; x is cast below.
        return self.dtype_policy.variable_dtype

    def call(self, x, w, update_emas=False):
        if update_emas:
            magnitude = batch_mean(ops.square(ops.cast(x, "float32")))
            beta = self.magnitude_ema_beta
            self.magnitude_ema.assign(magnitude + (self.magnitude_ema - magnitude) * beta)
        input_gain = ops.rsqrt(self.magnitude_ema)
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.kernel_size**2))
        x = modulated_conv2d(ops.cast(x, self.compute_dtype), self.kernel, styles,
                             demodulate=not self.is_torgb, input_gain=input_gain)
        return filtered_lrelu(
            x, fu=self.up_filter, fd=self.down_filter, b=self.bias,
            up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=1.0 if self.is_torgb else math.sqrt(2), slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def compute_output_shape(self, input_shape, w_shape=None):
        return (input_shape[0], self.out_size, self.out_size, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            name: getattr(self, name) for name in (
                "w_dim", "in_channels", "out_channels", "in_size", "out_size",
                "in_sampling_rate", "out_sampling_rate", "in_cutoff", "out_cutoff",
                "in_half_width", "out_half_width", "is_torgb", "is_critically_sampled",
                "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters",
                "conv_clamp", "magnitude_ema_beta")
        })
        return config
