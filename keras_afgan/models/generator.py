"""The StyleGAN3 generator: mapping network + synthesis network."""

import keras
import numpy as np

from keras_afgan.layers.mapping import MappingNetwork
from keras_afgan.layers.synthesis_network import SynthesisNetwork


@keras.saving.register_keras_serializable(package="keras_afgan")
class Generator(keras.Model):
    """Alias-Free GAN generator (StyleGAN3-T or -R), NHWC.

    `G(z, c, truncation_psi=1.0, truncation_cutoff=None)` returns images
    `[N, R, R, img_channels]` (roughly in [-1, 1]); `G.mapping(z, c, ...)`
    returns ws `[N, num_ws, w_dim]`; `G.synthesis(ws)` returns images.
    `c` is `[N, c_dim]` (one-hot labels) or, for an unconditional model,
    `None` or a zero-width `[N, 0]` array. Calls with `training=False` (as
    Keras's `predict` makes) promise no gradient: TensorFlow's XLA then
    resamples in its faster inference form.

    `dtype` (a Keras dtype policy such as "mixed_bfloat16") sets the
    precision: under a mixed policy only the synthesis layers of the
    `num_fp16_res` highest resolutions compute in reduced precision (their
    styles and modulation coefficients still in float32); the mapping
    network, the Fourier input and the other layers compute in float32, and
    images come out in float32.

    Args:
        z_dim, c_dim, w_dim: latent, label and intermediate-latent widths.
        img_resolution: output size R, a power of two >= 16.
        img_channels: output channels.
        channel_base, channel_max: channels of layer i are
            `min(channel_base / 2 / f_c,i, channel_max)`.
        num_layers, num_critical, first_cutoff, first_stopband,
        last_stopband_rel, margin_size, output_scale: the synthesis schedule
            (docs/design.md section 2).
        conv_kernel: 3 (config T) or 1 (config R).
        filter_size, lrelu_upsampling: filter taps per resampling factor and
            the temporary upsampling of the nonlinearity.
        use_radial_filters: radial (jinc) down filters (config R).
        conv_clamp: activation clamp, or `None`.
        magnitude_ema_beta: decay of the input-magnitude EMAs.
        num_fp16_res: how many of the highest resolutions compute in
            reduced precision under a mixed dtype policy (layers with
            `s * 2^num_fp16_res > R`); no effect under float32.
        mapping_layers, mapping_lr_multiplier, w_avg_beta: the mapping network.
        seed: seed of the random Fourier frequencies and phases.
        filter_window: window of the up/down filters: "kaiser" (the
            paper's), "lanczos" or "gaussian" (the filter ablation; see
            `keras_afgan.ops.filter_design.filter_window`).
        critical_sampling, noise_inputs, fixed_fourier: the paper's ablation
            switches (all off in configs T and R): every layer critically
            sampled (the opposite of config G), per-pixel noise inputs (the
            opposite of config C), Fourier features not transformed by w
            (the opposite of config H); `keras_afgan.layers.schedule.synthesis_spec`
            states exactly what each changes. `noise_mode` ("random",
            "const", "none") picks the noise, as for `StyleGAN2Generator`.
    """

    # `G.synthesis.input.transform` moves the content (equivariance metrics,
    # the SavedModel's synthesis signature).
    has_input_transform = True

    def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                 channel_base=32768, channel_max=512, num_layers=14, num_critical=2,
                 first_cutoff=2, first_stopband=2**2.1, last_stopband_rel=2**0.3,
                 margin_size=10, output_scale=0.25, conv_kernel=3, filter_size=6,
                 lrelu_upsampling=2, use_radial_filters=False, conv_clamp=256,
                 magnitude_ema_beta=0.999, num_fp16_res=4, mapping_layers=2,
                 mapping_lr_multiplier=0.01, w_avg_beta=0.998, seed=None, filter_window="kaiser",
                 critical_sampling=False, noise_inputs=False, fixed_fourier=False, **kwargs):
        super().__init__(**kwargs)
        check_latent_sizes(z_dim, c_dim, w_dim)
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.mapping_layers = int(mapping_layers)
        self.mapping_lr_multiplier = float(mapping_lr_multiplier)
        self.w_avg_beta = float(w_avg_beta)
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, num_layers=num_layers,
            num_critical=num_critical, first_cutoff=first_cutoff, first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel, margin_size=margin_size,
            output_scale=output_scale, conv_kernel=conv_kernel, filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters,
            conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta,
            num_fp16_res=num_fp16_res, seed=seed, filter_window=filter_window,
            critical_sampling=critical_sampling, noise_inputs=noise_inputs,
            fixed_fourier=fixed_fourier, dtype=self.dtype_policy, name="synthesis",
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
            num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta, dtype=self.dtype_policy.variable_dtype, name="mapping",
        )
        self.build()

    @property
    def input_dtype(self):
        # z reaches the mapping network, which runs in float32 under mixed
        # precision, unrounded (see SynthesisNetwork.input_dtype).
        return self.dtype_policy.variable_dtype

    def build(self, input_shape=None):
        self.mapping.build()
        self.synthesis.build()
        self.built = True

    def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False,
             noise_mode="random", training=None):
        # `training` reaches the synthesis through Keras's call context
        # (`predict` passes False: see SynthesisNetwork.call).
        if isinstance(z, (list, tuple)) and c is None:  # G.predict((z, c)) passes one input
            z, c = z
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, noise_mode=noise_mode)

    def compute_output_shape(self, z_shape, c_shape=None):
        r = self.img_resolution
        return (z_shape[0], r, r, self.img_channels)

    def predict(self, x, *args, **kwargs):
        # Keras's predict fails on zero samples; the answer is known.
        if leading_size(x) == 0:
            r = self.img_resolution
            return np.zeros((0, r, r, self.img_channels), np.float32)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        s = self.synthesis
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "channel_base": s.channel_base,
            "channel_max": s.channel_max,
            "num_layers": s.num_layers,
            "num_critical": s.num_critical,
            "first_cutoff": s.first_cutoff,
            "first_stopband": s.first_stopband,
            "last_stopband_rel": s.last_stopband_rel,
            "margin_size": s.margin_size,
            "output_scale": s.output_scale,
            "conv_kernel": s.conv_kernel,
            "filter_size": s.filter_size,
            "lrelu_upsampling": s.lrelu_upsampling,
            "use_radial_filters": s.use_radial_filters,
            "conv_clamp": s.conv_clamp,
            "magnitude_ema_beta": s.magnitude_ema_beta,
            "num_fp16_res": s.num_fp16_res,
            "mapping_layers": self.mapping_layers,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "w_avg_beta": self.w_avg_beta,
            "seed": s.seed,
            "filter_window": s.filter_window,
            "critical_sampling": s.critical_sampling,
            "noise_inputs": s.noise_inputs,
            "fixed_fourier": s.fixed_fourier,
        }


def check_latent_sizes(z_dim, c_dim, w_dim):
    """Raise unless z_dim and w_dim are positive integers and c_dim an integer >= 0."""
    for name, value in (("z_dim", z_dim), ("w_dim", w_dim)):
        if int(value) != value or value < 1:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
    if int(c_dim) != c_dim or c_dim < 0:
        raise ValueError(f"Expected c_dim to be an integer >= 0. Received: {c_dim!r}")


def leading_size(x):
    """The batch size of a model input (`x` or the first of `(x, c)`), or None."""
    first = x[0] if isinstance(x, (tuple, list)) and x else x
    shape = getattr(first, "shape", None)
    return None if not shape else shape[0]


def generator_with_dtype(generator, dtype):
    """`generator` itself if it computes in the dtype policy `dtype`, else a copy
    that does, with the same (float32) weights: e.g. a float32 generator from
    one trained under mixed precision, for inference and export."""
    if generator.dtype_policy.name == keras.dtype_policies.get(dtype).name:
        return generator
    copy = type(generator).from_config(dict(generator.get_config(), dtype=dtype))
    copy.set_weights(generator.get_weights())
    return copy
