"""The synthesis network: Fourier input, 14 alias-free layers, ToRGB."""

import contextlib

import keras
from keras import ops

from keras_afgan.layers.schedule import synthesis_spec
from keras_afgan.layers.stylegan2 import check_noise_mode
from keras_afgan.layers.synthesis_input import SynthesisInput
from keras_afgan.layers.synthesis_layer import SynthesisLayer
from keras_afgan.ops.upfirdn2d import inference_resampling


@keras.saving.register_keras_serializable(package="keras_afgan")
class SynthesisNetwork(keras.layers.Layer):
    """Maps `ws` `[N, num_ws, w_dim]` to NHWC images `[N, R, R, img_channels]`.

    ws[:, 0] drives the Fourier input's rotation/translation, ws[:, i + 1]
    the styles of layer i. The schedule comes from `schedule.synthesis_spec`;
    the output is the ToRGB result times `output_scale`. Under a mixed dtype
    policy only the layers with `s_i * 2^num_fp16_res > R` (the reference's
    `num_fp16_res` highest resolutions) compute in reduced precision; the
    Fourier input and the other layers stay float32. `call(ws,
    transform=...)` takes optional per-sample input transforms `[N, 3, 3]`
    (see `models.transforms.content_transform_matrices`) that move each
    sample's content on top of the stored `input.transform`.
    """

    def __init__(self, w_dim, img_resolution, img_channels=3, channel_base=32768,
                 channel_max=512, num_layers=14, num_critical=2, first_cutoff=2,
                 first_stopband=2**2.1, last_stopband_rel=2**0.3, margin_size=10,
                 output_scale=0.25, conv_kernel=3, filter_size=6, lrelu_upsampling=2,
                 use_radial_filters=False, conv_clamp=256, magnitude_ema_beta=0.999,
                 num_fp16_res=4, seed=None, filter_window="kaiser", critical_sampling=False,
                 noise_inputs=False, fixed_fourier=False, **kwargs):
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.img_resolution = img_resolution
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.num_layers = int(num_layers)
        self.num_critical = int(num_critical)
        self.first_cutoff = float(first_cutoff)
        self.first_stopband = float(first_stopband)
        self.last_stopband_rel = float(last_stopband_rel)
        self.margin_size = int(margin_size)
        self.output_scale = float(output_scale)
        self.conv_kernel = int(conv_kernel)
        self.filter_size = int(filter_size)
        self.lrelu_upsampling = int(lrelu_upsampling)
        self.use_radial_filters = bool(use_radial_filters)
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = float(magnitude_ema_beta)
        self.num_fp16_res = int(num_fp16_res)
        self.seed = seed
        self.filter_window = filter_window
        self.critical_sampling = bool(critical_sampling)
        self.noise_inputs = bool(noise_inputs)
        self.fixed_fourier = bool(fixed_fourier)

        self.spec = synthesis_spec(
            img_resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, num_layers=num_layers, num_critical=num_critical,
            first_cutoff=first_cutoff, first_stopband=first_stopband,
            last_stopband_rel=last_stopband_rel, margin_size=margin_size,
            conv_kernel=conv_kernel, use_radial_filters=use_radial_filters,
            filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
            num_fp16_res=num_fp16_res, filter_window=filter_window,
            critical_sampling=critical_sampling, noise_inputs=noise_inputs,
            fixed_fourier=fixed_fourier,
        )
        self.num_ws = self.spec.num_ws
        spec_in = self.spec.input
        self.fourier_input = SynthesisInput(
            w_dim, channels=spec_in.channels, size=spec_in.size,
            sampling_rate=spec_in.sampling_rate, bandwidth=spec_in.bandwidth, seed=seed,
            transformed=spec_in.transformed,
            dtype=self.dtype_policy.variable_dtype, name="input",
        )
        self.synthesis_layers = [
            SynthesisLayer(
                w_dim, s, conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta,
                dtype=self.dtype_policy if s.reduced_precision
                else self.dtype_policy.variable_dtype,
                name=s.name,
            )
            for s in self.spec.layers
        ]

    @property
    def input(self):
        """The Fourier-feature input layer (`.transform` is the user transform)."""
        return self.fourier_input

    @property
    def input_dtype(self):
        # Under mixed precision the Fourier input runs in float32 (as the
        # reference's): its rotation and translation come from ws[:, 0], and a
        # bfloat16 translation moves the phases by about frequency * t / 256.
        # Keras would round ws to the compute dtype on the way in.
        return self.dtype_policy.variable_dtype

    def build(self, input_shape=None):
        self.fourier_input.build()
        for layer in self.synthesis_layers:
            layer.build()

    def call(self, ws, update_emas=False, return_activations=False, transform=None,
             noise_mode="random", training=None):
        # `noise_mode` reaches the layers' noise inputs (the ablation
        # `noise_inputs`; without them it has no effect). `training=False`
        # (Keras's `predict`): no gradient will be taken, so the resampling
        # may pick its fastest inference form.
        check_noise_mode(noise_mode)
        with inference_resampling() if training is False else contextlib.nullcontext():
            return self._synthesize(ws, update_emas, return_activations, transform, noise_mode)

    def _synthesize(self, ws, update_emas, return_activations, transform, noise_mode):
        shape = tuple(ws.shape)
        if len(shape) != 3 or shape[1] != self.num_ws or shape[2] != self.w_dim:
            raise ValueError(
                f"Expected ws of shape [N, {self.num_ws}, {self.w_dim}]. Received: shape={shape}"
            )
        ws = ops.cast(ws, self.input_dtype)
        x = self.fourier_input(ws[:, 0], transform=transform)
        activations = {"input": x}
        for i, layer in enumerate(self.synthesis_layers):
            x = layer(x, ws[:, i + 1], update_emas=update_emas, noise_mode=noise_mode)
            activations[layer.name] = x
        x = ops.cast(x, "float32") * self.output_scale  # images leave in float32
        if return_activations:
            return x, activations
        return x

    def compute_output_shape(self, ws_shape):
        r = self.img_resolution
        return (ws_shape[0], r, r, self.img_channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            name: getattr(self, name) for name in (
                "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max",
                "num_layers", "num_critical", "first_cutoff", "first_stopband",
                "last_stopband_rel", "margin_size", "output_scale", "conv_kernel",
                "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
                "magnitude_ema_beta", "num_fp16_res", "seed", "filter_window",
                "critical_sampling", "noise_inputs", "fixed_fourier")
        })
        return config
