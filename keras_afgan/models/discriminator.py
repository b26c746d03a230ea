"""The StyleGAN2 residual discriminator used by both StyleGAN3 configs."""

import keras
import numpy as np
from keras import ops

from keras_afgan.layers.discriminator_blocks import DiscriminatorBlock
from keras_afgan.layers.discriminator_blocks import DiscriminatorEpilogue
from keras_afgan.layers.mapping import MappingNetwork
from keras_afgan.layers.mapping import check_width
from keras_afgan.layers.schedule import discriminator_channels
from keras_afgan.layers.schedule import discriminator_fp16_resolution
from keras_afgan.models.generator import leading_size


@keras.saving.register_keras_serializable(package="keras_afgan")
class Discriminator(keras.Model):
    """`D(img, c)` returns logits `[N, 1]` for NHWC images `[N, R, R, C]`.

    Blocks `b{res}` from R down to 8 with `min(channel_base // res,
    channel_max)` channels, then the 4x4 epilogue. A conditional D maps its
    labels through an 8-layer mapping network to `cmap_dim` (default: the
    4x4 channel count) and projects the output on it.

    Under a mixed dtype policy only the blocks of the `num_fp16_res` highest
    resolutions compute in reduced precision; the other blocks, the label
    mapping and the epilogue compute in float32 (as the reference's).

    Args:
        c_dim: label width (0 for unconditional).
        img_resolution: input size, a power of two >= 16.
        img_channels: input channels.
        channel_base, channel_max: channel schedule.
        conv_clamp: activation clamp of the conv layers, or `None`.
        cmap_dim: width of the label projection (conditional only).
        mapping_layers, mapping_lr_multiplier: the label mapping network.
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation.
        num_fp16_res: how many blocks (from the highest resolution) compute
            in reduced precision under a mixed dtype policy.
        freeze_layers: Freeze-D: the first `freeze_layers` conv layers,
            counted from the input (b{R}: fromRGB, conv0, conv1, skip; then
            each block's conv0, conv1, skip), are not trained.
    """

    def __init__(self, c_dim=0, img_resolution=256, img_channels=3, channel_base=32768,
                 channel_max=512, conv_clamp=256, cmap_dim=None, mapping_layers=8,
                 mapping_lr_multiplier=0.01, mbstd_group_size=4, mbstd_num_channels=1,
                 num_fp16_res=4, freeze_layers=0, **kwargs):
        super().__init__(**kwargs)
        if int(c_dim) != c_dim or c_dim < 0:
            raise ValueError(f"Expected c_dim to be an integer >= 0. Received: {c_dim!r}")
        channels = discriminator_channels(img_resolution, channel_base, channel_max)
        self.c_dim = int(c_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.conv_clamp = conv_clamp
        self.cmap_dim = None if cmap_dim is None else int(cmap_dim)
        self.mapping_layers = int(mapping_layers)
        self.mapping_lr_multiplier = float(mapping_lr_multiplier)
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = int(mbstd_num_channels)
        self.num_fp16_res = int(num_fp16_res)
        if int(freeze_layers) != freeze_layers or freeze_layers < 0:
            raise ValueError(
                f"Expected freeze_layers to be an integer >= 0. Received: {freeze_layers!r}")
        self.freeze_layers = int(freeze_layers)
        fp16_resolution = discriminator_fp16_resolution(self.img_resolution, num_fp16_res)
        float32 = self.dtype_policy.variable_dtype

        self.blocks = []
        layer_index = 0
        for res in (res for res in channels if res > 4):
            block = DiscriminatorBlock(
                res, in_channels=channels[res] if res < self.img_resolution else 0,
                tmp_channels=channels[res], out_channels=channels[res // 2],
                img_channels=img_channels, conv_clamp=conv_clamp,
                first_layer_idx=layer_index, freeze_layers=self.freeze_layers,
                dtype=self.dtype_policy if res >= fp16_resolution else float32,
                name=f"b{res}",
            )
            layer_index += block.num_layers
            self.blocks.append(block)
        effective_cmap = 0
        self.mapping = None
        if self.c_dim > 0:
            effective_cmap = channels[4] if self.cmap_dim is None else self.cmap_dim
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=effective_cmap, num_ws=None,
                num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
                dtype=float32, name="mapping",
            )
        self.epilogue = DiscriminatorEpilogue(
            channels[4], cmap_dim=effective_cmap, resolution=4,
            mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
            conv_clamp=conv_clamp, dtype=float32, name="b4",
        )
        self.build()

    @property
    def input_dtype(self):
        # Images reach each block unrounded; each casts them to its own dtype.
        return self.dtype_policy.variable_dtype

    @property
    def trainable(self):
        return keras.Model.trainable.fget(self)

    @trainable.setter
    def trainable(self, value):
        # Keras's setter reaches every sublayer: keep the frozen ones frozen.
        keras.Model.trainable.fset(self, value)
        for block in getattr(self, "blocks", ()):
            block.freeze()

    def build(self, input_shape=None):
        for block in self.blocks:
            block.build()
        if self.mapping is not None:
            self.mapping.build()
        self.epilogue.build()
        self.built = True

    def call(self, img, c=None):
        if isinstance(img, (list, tuple)) and c is None:  # D.predict((img, c)) passes one input
            img, c = img
        r, ch = self.img_resolution, self.img_channels
        shape = tuple(img.shape)
        if len(shape) != 4 or shape[1:] != (r, r, ch):
            raise ValueError(
                f"Expected images of shape [N, {r}, {r}, {ch}] (NHWC). Received: shape={shape}"
            )
        x = img
        for block in self.blocks:
            x = block(x)
        cmap = None
        if self.mapping is not None:
            cmap = self.mapping(None, c)
        elif c is not None:
            check_width("c", c, 0)
        return ops.cast(self.epilogue(x, cmap), "float32")  # logits leave in float32

    def compute_output_shape(self, img_shape, c_shape=None):
        return (img_shape[0], 1)

    def predict(self, x, *args, **kwargs):
        # Keras's predict fails on zero samples; the answer is known.
        if leading_size(x) == 0:
            return np.zeros((0, 1), np.float32)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "c_dim": self.c_dim,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "channel_base": self.channel_base,
            "channel_max": self.channel_max,
            "conv_clamp": self.conv_clamp,
            "cmap_dim": self.cmap_dim,
            "mapping_layers": self.mapping_layers,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "mbstd_group_size": self.mbstd_group_size,
            "mbstd_num_channels": self.mbstd_num_channels,
            "num_fp16_res": self.num_fp16_res,
            "freeze_layers": self.freeze_layers,
        }
