"""Building blocks of the StyleGAN2 residual discriminator (docs/design.md section 3)."""

import math

import keras
from keras import ops

from keras_afgan.layers.conv import EqualizedConv2D
from keras_afgan.layers.dense import EqualizedDense


@keras.saving.register_keras_serializable(package="keras_afgan")
class DiscriminatorBlock(keras.layers.Layer):
    """Residual block at `resolution`, halving it.

    Steps: (first block only) fromRGB 1x1 conv + lrelu; skip = low-pass,
    decimate, 1x1 conv without bias, times sqrt(.5); conv0 3x3 + lrelu; conv1
    low-pass then 3x3 stride-2 conv + lrelu with gain sqrt(.5); skip + conv1.

    Args:
        resolution: input size.
        in_channels: channels of the incoming features (0 for the first
            block, which reads the image).
        tmp_channels: channels inside the block.
        out_channels: channels of the output.
        img_channels: image channels (first block).
        conv_clamp: clamp of the conv activations, or `None`.
        first_layer_idx: index of this block's first layer in the
            discriminator, counting from the input (fromRGB, conv0, conv1,
            skip in that order).
        freeze_layers: the discriminator's first `freeze_layers` layers are
            frozen (Freeze-D): those of this block get `trainable = False`.
    """

    def __init__(self, resolution, in_channels, tmp_channels, out_channels, img_channels=3,
                 conv_clamp=None, first_layer_idx=0, freeze_layers=0, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.in_channels = int(in_channels)
        self.tmp_channels = int(tmp_channels)
        self.out_channels = int(out_channels)
        self.img_channels = int(img_channels)
        self.conv_clamp = conv_clamp
        self.first_layer_idx = int(first_layer_idx)
        self.freeze_layers = int(freeze_layers)
        dtype = self.dtype_policy
        self.fromrgb = None
        if self.in_channels == 0:
            self.fromrgb = EqualizedConv2D(tmp_channels, 1, activation="lrelu",
                                           conv_clamp=conv_clamp, dtype=dtype, name="fromrgb")
        self.conv0 = EqualizedConv2D(tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp,
                                     dtype=dtype, name="conv0")
        self.conv1 = EqualizedConv2D(out_channels, 3, activation="lrelu", down=2,
                                     conv_clamp=conv_clamp, dtype=dtype, name="conv1")
        self.skip = EqualizedConv2D(out_channels, 1, use_bias=False, down=2, dtype=dtype,
                                    name="skip")
        self.freeze()

    @property
    def conv_layers(self):
        """The block's layers in the reference's order (fromRGB, conv0, conv1, skip)."""
        return [layer for layer in (self.fromrgb, self.conv0, self.conv1, self.skip)
                if layer is not None]

    @property
    def num_layers(self):
        return len(self.conv_layers)

    def freeze(self):
        """Mark the layers before `freeze_layers` (by discriminator index) not trainable."""
        for index, layer in enumerate(self.conv_layers, start=self.first_layer_idx):
            if index < self.freeze_layers:
                layer.trainable = False

    def build(self, input_shape=None):
        r = self.resolution
        if self.fromrgb is not None:
            self.fromrgb.build((None, r, r, self.img_channels))
        self.conv0.build((None, r, r, self.tmp_channels))
        self.conv1.build((None, r, r, self.tmp_channels))
        self.skip.build((None, r, r, self.tmp_channels))

    def call(self, x):
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.resolution // 2, self.resolution // 2, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "tmp_channels": self.tmp_channels,
            "out_channels": self.out_channels,
            "img_channels": self.img_channels,
            "conv_clamp": self.conv_clamp,
            "first_layer_idx": self.first_layer_idx,
            "freeze_layers": self.freeze_layers,
        })
        return config


@keras.saving.register_keras_serializable(package="keras_afgan")
class MinibatchStdDev(keras.layers.Layer):
    """Append the minibatch standard deviation as `num_channels` features.

    Samples are grouped as `reshape(G, N/G, ...)` with
    `G = min(group_size, N)`: sample n belongs to group n mod (N/G). The std
    over each group (+1e-8 inside the sqrt) is averaged over pixels and the
    channels of each of the `num_channels` channel groups, then appended.
    """

    def __init__(self, group_size=4, num_channels=1, **kwargs):
        super().__init__(**kwargs)
        self.group_size = None if group_size is None else int(group_size)
        self.num_channels = int(num_channels)

    def call(self, x):
        _, h, w, c = x.shape
        f = self.num_channels
        n = x.shape[0]
        # An empty batch (n = 0) takes groups of 1: no division by zero.
        if n is not None:
            g = max(min(self.group_size, n) if self.group_size else n, 1)
            if n % g:
                raise ValueError(
                    f"Expected the batch size to be divisible by the minibatch-stddev group "
                    f"size {g}. Received: batch size {n}"
                )
        else:
            n = ops.shape(x)[0]
            g = ops.maximum(ops.minimum(self.group_size, n) if self.group_size else n, 1)
        # A statistic: float32 (squared float16 activations near the clamp overflow).
        y = ops.reshape(ops.cast(x, "float32"), (g, -1, h, w, f, c // f))
        y = y - ops.mean(y, axis=0)
        y = ops.mean(ops.square(y), axis=0)
        y = ops.sqrt(y + 1e-8)
        y = ops.mean(y, axis=(1, 2, 4))  # [N/G, F]
        y = ops.tile(y, (g, 1))  # sample n gets group n mod (N/G)
        y = ops.broadcast_to(y[:, None, None, :], (ops.shape(x)[0], h, w, f))
        return ops.concatenate([x, ops.cast(y, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + self.num_channels,)

    def get_config(self):
        config = super().get_config()
        config.update({"group_size": self.group_size, "num_channels": self.num_channels})
        return config


@keras.saving.register_keras_serializable(package="keras_afgan")
class DiscriminatorEpilogue(keras.layers.Layer):
    """Final 4x4 block: mbstd, 3x3 conv, dense, output (projected on cmap).

    Returns `[N, 1]`; with `cmap_dim > 0` the output `[N, cmap_dim]` is
    projected: `sum(x * cmap) / sqrt(cmap_dim)`.
    """

    def __init__(self, in_channels, cmap_dim=0, resolution=4, mbstd_group_size=4,
                 mbstd_num_channels=1, conv_clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.cmap_dim = int(cmap_dim)
        self.resolution = int(resolution)
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = int(mbstd_num_channels)
        self.conv_clamp = conv_clamp
        dtype = self.dtype_policy
        self.mbstd = None
        if self.mbstd_num_channels > 0:
            self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_channels, dtype=dtype,
                                         name="mbstd")
        self.conv = EqualizedConv2D(in_channels, 3, activation="lrelu", conv_clamp=conv_clamp,
                                    dtype=dtype, name="conv")
        self.fc = EqualizedDense(in_channels, activation="lrelu", dtype=dtype, name="fc")
        self.out = EqualizedDense(self.cmap_dim or 1, dtype=dtype, name="out")

    def build(self, input_shape=None):
        r, c = self.resolution, self.in_channels
        if self.mbstd is not None:
            self.mbstd.build((None, r, r, c))
        self.conv.build((None, r, r, c + self.mbstd_num_channels))
        self.fc.build((None, r * r * c))  # NHWC flatten
        self.out.build((None, c))

    def call(self, x, cmap=None):
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = ops.reshape(x, (-1, self.resolution * self.resolution * self.in_channels))
        x = self.fc(x)
        x = self.out(x)
        if self.cmap_dim > 0:
            x = ops.sum(x * ops.cast(cmap, x.dtype), axis=1, keepdims=True)
            x = x * (1 / math.sqrt(self.cmap_dim))
        return x

    def compute_output_shape(self, input_shape, cmap_shape=None):
        return (input_shape[0], 1)

    def get_config(self):
        config = super().get_config()
        config.update({
            "in_channels": self.in_channels,
            "cmap_dim": self.cmap_dim,
            "resolution": self.resolution,
            "mbstd_group_size": self.mbstd_group_size,
            "mbstd_num_channels": self.mbstd_num_channels,
            "conv_clamp": self.conv_clamp,
        })
        return config
