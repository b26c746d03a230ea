"""One layer of the alias-free synthesis network."""

import math

import keras
from keras import ops

from keras_afgan.layers.dense import EqualizedDense
from keras_afgan.layers.schedule import LayerSpec
from keras_afgan.layers.schedule import layer_filters
from keras_afgan.layers.statistics import batch_mean
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
    config R's non-critical layers). With `spec.noise` (the ablation
    `noise_inputs`), per-pixel noise times a learned strength (initially 0)
    is added after the convolution, as StyleGAN2 does: random per call,
    the stored `noise_const`, or none (`noise_mode`). ToRGB: 1x1 conv, styles times
    `1 / sqrt(in_channels)`, no demodulation, no filters, slope 1, gain 1.

    Under a mixed dtype policy the convolution and the nonlinearity run in
    the compute dtype; the styles (the affine layer), the weight's
    normalisation and the (de)modulation coefficients stay float32, as in
    the reference. Which layers get a mixed policy is the synthesis
    network's choice (`num_fp16_res`).

    Args:
        w_dim: width of w.
        spec: the layer's `keras_afgan.layers.schedule.LayerSpec` (or its
            `to_config()` dict): sizes, channels, rates, cutoffs, resampling
            factors, taps and padding. The filters come from
            `schedule.layer_filters(spec)`; nothing is recomputed here.
        conv_clamp: clamp of the pre-activation (None: no clamp).
        magnitude_ema_beta: decay of `magnitude_ema`.
    """

    def __init__(self, w_dim, spec, conv_clamp=256, magnitude_ema_beta=0.999, **kwargs):
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.spec = LayerSpec.from_config(spec)
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = float(magnitude_ema_beta)
        self.up_filter, self.down_filter = layer_filters(self.spec)
        self.affine = EqualizedDense(self.spec.in_channels, bias_init=1.0,
                                     dtype=self.dtype_policy.variable_dtype, name="affine")
        self.seed_generator = (keras.random.SeedGenerator(name="noise_seed")
                               if self.spec.noise else None)

    def build(self, input_shape=None):
        self.affine.build((None, self.w_dim))
        s = self.spec
        # Read in float32 (not autocast): the modulation math needs it.
        self.kernel = self.add_weight(
            name="kernel", shape=(s.conv_kernel, s.conv_kernel, s.in_channels, s.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0), autocast=False,
        )
        self.bias = self.add_weight(name="bias", shape=(s.out_channels,), initializer="zeros")
        self.magnitude_ema = self.add_weight(
            name="magnitude_ema", shape=(), initializer="ones", trainable=False, autocast=False,
        )
        self.noise_const = self.noise_strength = None
        if s.noise:  # at the convolution's output size ('full' padding)
            size = s.in_size + s.conv_kernel - 1
            self.noise_const = self.add_weight(
                name="noise_const", shape=(size, size),
                initializer=keras.initializers.RandomNormal(stddev=1.0), trainable=False,
                autocast=False)
            self.noise_strength = self.add_weight(name="noise_strength", shape=(),
                                                  initializer="zeros")

    @property
    def input_dtype(self):
        # w reaches the (float32) affine layer unrounded; x is cast below.
        return self.dtype_policy.variable_dtype

    def call(self, x, w, update_emas=False, noise_mode="random"):
        if update_emas:
            magnitude = batch_mean(ops.square(ops.cast(x, "float32")))
            beta = self.magnitude_ema_beta
            self.magnitude_ema.assign(magnitude + (self.magnitude_ema - magnitude) * beta)
        input_gain = ops.rsqrt(self.magnitude_ema)
        styles = self.affine(w)
        s = self.spec
        if s.is_torgb:
            styles = styles * (1 / math.sqrt(s.in_channels * s.conv_kernel**2))
        x = modulated_conv2d(ops.cast(x, self.compute_dtype), self.kernel, styles,
                             demodulate=not s.is_torgb, input_gain=input_gain)
        if s.noise and noise_mode != "none":
            if noise_mode == "const":
                noise = ops.cast(self.noise_const, x.dtype)[None, :, :, None]
            else:
                size = s.in_size + s.conv_kernel - 1
                noise = ops.cast(keras.random.normal((ops.shape(x)[0], size, size, 1),
                                                     seed=self.seed_generator), x.dtype)
            x = x + noise * ops.cast(self.noise_strength, x.dtype)
        return filtered_lrelu(
            x, fu=self.up_filter, fd=self.down_filter, b=self.bias,
            up=s.up_factor, down=s.down_factor, padding=s.padding,
            gain=1.0 if s.is_torgb else math.sqrt(2), slope=1.0 if s.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def compute_output_shape(self, input_shape, w_shape=None):
        s = self.spec
        return (input_shape[0], s.out_size, s.out_size, s.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update({"w_dim": self.w_dim, "spec": self.spec.to_config(),
                       "conv_clamp": self.conv_clamp,
                       "magnitude_ema_beta": self.magnitude_ema_beta})
        return config
