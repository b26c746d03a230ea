"""The StyleGAN2 generator (the paper's config A): mapping + StyleGAN2 synthesis."""

import keras
import numpy as np

from keras_afgan.layers.mapping import MappingNetwork
from keras_afgan.layers.stylegan2 import StyleGAN2SynthesisNetwork
from keras_afgan.layers.stylegan2 import check_noise_mode
from keras_afgan.models.generator import check_latent_sizes
from keras_afgan.models.generator import leading_size


@keras.saving.register_keras_serializable(package="keras_afgan")
class StyleGAN2Generator(keras.Model):
    """StyleGAN2 generator, NHWC, with the interface of `Generator`.

    `G(z, c, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random")`
    returns images `[N, R, R, img_channels]`; `G.mapping(z, c, ...)` returns
    ws `[N, num_ws, w_dim]`; `G.synthesis(ws, noise_mode=...)` returns
    images. `noise_mode` is "random" (fresh per-pixel noise, the default as in
    the reference), "const" (each layer's stored `noise_const`: deterministic
    images, what export uses) or "none".

    Args:
        z_dim, c_dim, w_dim: latent, label and intermediate-latent widths.
        img_resolution: output size R, a power of two >= 4.
        img_channels: output channels.
        channel_base, channel_max: channels of block `res` are
            `min(channel_base // res, channel_max)`.
        num_fp16_res: reduced-precision resolutions under a mixed policy.
        conv_clamp: activation clamp, or None.
        architecture: "skip" (default), "resnet" or "orig".
        use_noise: whether the convs have noise inputs.
        mapping_layers, mapping_lr_multiplier, w_avg_beta: the mapping network
            (8 layers by default, as StyleGAN2 trains it).
        seed: seed of the stored noise buffers and the random noise.
        input_kind: "const" (StyleGAN2, config A) or "fourier" (config B:
            StyleGAN3's Fourier features on the 4x4 grid instead of the
            constant, moved by ws[:, 0] and the user transform
            `G.synthesis.input.transform`; docs/design.md section 8.6).
    """

    def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                 channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
                 architecture="skip", use_noise=True, mapping_layers=8,
                 mapping_lr_multiplier=0.01, w_avg_beta=0.998, seed=None, input_kind="const",
                 **kwargs):
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
        self.synthesis = StyleGAN2SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp, architecture=architecture, use_noise=use_noise, seed=seed,
            input_kind=input_kind, dtype=self.dtype_policy, name="synthesis")
        # Config B's Fourier input can be moved (EQ metrics, the SavedModel's
        # synthesis signature); a learned constant cannot.
        self.has_input_transform = input_kind == "fourier"
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
            num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta, dtype=self.dtype_policy.variable_dtype, name="mapping")
        self.build()

    @property
    def input_dtype(self):
        return self.dtype_policy.variable_dtype

    def build(self, input_shape=None):
        self.mapping.build()
        self.synthesis.build()
        self.built = True

    def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False,
             noise_mode="random", training=None):
        check_noise_mode(noise_mode)
        if isinstance(z, (list, tuple)) and c is None:
            z, c = z
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode, update_emas=update_emas)

    def compute_output_shape(self, z_shape, c_shape=None):
        r = self.img_resolution
        return (z_shape[0], r, r, self.img_channels)

    def predict(self, x, *args, **kwargs):
        if leading_size(x) == 0:  # Keras's predict fails on zero samples
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
            "num_fp16_res": s.num_fp16_res,
            "conv_clamp": s.conv_clamp,
            "architecture": s.architecture,
            "use_noise": s.use_noise,
            "input_kind": s.input_kind,
            "mapping_layers": self.mapping_layers,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "w_avg_beta": self.w_avg_beta,
            "seed": s.seed,
        }
