"""The StyleGAN2 synthesis network (the paper's config A), NHWC.

A learned 4x4 constant, then per resolution a block of a 2x-upsampling
modulated 3x3 conv, a modulated 3x3 conv (each with per-pixel noise) and a
ToRGB layer; the images of the blocks are upsampled with the FIR filter
[1, 3, 3, 1] and summed (`skip`), or the features pass through residual
blocks and only the last block has a ToRGB layer (`resnet`, `orig`).
docs/design.md section 8 states the math.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_afgan.layers.conv import EqualizedConv2D
from keras_afgan.layers.dense import EqualizedDense
from keras_afgan.layers.synthesis_input import SynthesisInput
from keras_afgan.ops.bias_act import bias_act
from keras_afgan.ops.filter_design import resample_filter_1d
from keras_afgan.ops.modulated_conv import modulated_conv2d
from keras_afgan.ops.upfirdn2d import upfirdn2d

ARCHITECTURES = ("skip", "resnet", "orig")
# The first block's input: StyleGAN2's learned constant, or (the paper's
# config B) StyleGAN3's Fourier features sampled on the same 4x4 grid.
INPUT_KINDS = ("const", "fourier")
# Config B's Fourier input: the 4x4 grid covers the image (4 samples per
# unit), and the frequencies lie in a disk of radius 1 (half the grid's
# Nyquist frequency; the fade-out of SynthesisInput needs bandwidth < s/2).
FOURIER_SAMPLING_RATE = 4.0
FOURIER_BANDWIDTH = 1.0
NOISE_MODES = ("random", "const", "none")


def check_noise_mode(noise_mode):
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"Expected noise_mode in {NOISE_MODES}. Received: {noise_mode!r}")


def upsample_2x(x):
    """Zero-insert 2x and low-pass with [1, 3, 3, 1] / 8 (separable) times 4."""
    f = resample_filter_1d()
    lo, hi = (len(f) + 1) // 2, (len(f) - 2) // 2
    return upfirdn2d(x, f, up=2, padding=(lo, hi, lo, hi), gain=4)


def stylegan2_channels(img_resolution, channel_base=32768, channel_max=512):
    """`{res: min(channel_base // res, channel_max)}` for res = 4 ... R."""
    return {2**i: min(channel_base // 2**i, channel_max)
            for i in range(2, int(np.log2(img_resolution)) + 1)}


@keras.saving.register_keras_serializable(package="keras_afgan")
class StyleConv(keras.layers.Layer):
    """Modulated 3x3 conv (optionally 2x upsampling), noise, bias, lrelu.

    Steps: styles = affine(w) (bias 1); demodulated modulated conv with
    'same' padding, or, with `up=2`, a transposed conv with stride 2
    followed by the FIR filter [1, 3, 3, 1] / 8 (times 4, 'same'-sized
    output `2 H`); add noise times the learned `noise_strength` (random
    `[N, H, W, 1]`, the stored `noise_const` `[H, W]`, or none); bias,
    leaky ReLU with gain `sqrt(2) * gain`, clamp `conv_clamp * gain`.

    Args:
        w_dim: width of w.
        in_channels, out_channels: channels.
        resolution: output size.
        kernel_size: conv kernel size.
        up: 1 or 2.
        use_noise: whether the layer has a noise input.
        conv_clamp: clamp, or None.
        seed: seed of the random noise.
    """

    def __init__(self, w_dim, in_channels, out_channels, resolution, kernel_size=3, up=1,
                 use_noise=True, conv_clamp=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if up not in (1, 2):
            raise ValueError(f"Expected up to be 1 or 2. Received: {up!r}")
        self.w_dim = int(w_dim)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.resolution = int(resolution)
        self.kernel_size = int(kernel_size)
        self.up = int(up)
        self.use_noise = bool(use_noise)
        self.conv_clamp = conv_clamp
        self.seed = seed
        self.affine = EqualizedDense(self.in_channels, bias_init=1.0,
                                     dtype=self.dtype_policy.variable_dtype, name="affine")
        self.resample_filter = resample_filter_1d()
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed") if use_noise else None

    def build(self, input_shape=None):
        self.affine.build((None, self.w_dim))
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0), autocast=False)
        self.noise_const = self.noise_strength = None
        if self.use_noise:
            self.noise_const = self.add_weight(
                name="noise_const", shape=(self.resolution, self.resolution),
                initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
                trainable=False, autocast=False)
            self.noise_strength = self.add_weight(name="noise_strength", shape=(),
                                                  initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros")

    @property
    def input_dtype(self):
        return self.dtype_policy.variable_dtype  # w reaches the float32 affine unrounded

    def call(self, x, w, noise_mode="random", gain=1.0):
        check_noise_mode(noise_mode)
        styles = self.affine(w)
        x = ops.cast(x, self.compute_dtype)
        if self.up == 2:
            x = modulated_conv2d(x, self.kernel, styles, up=2)  # [N, 2H + 1, 2W + 1, O]
            x = upfirdn2d(x, self.resample_filter, padding=1, gain=4)
        else:
            x = modulated_conv2d(x, self.kernel, styles, padding=self.kernel_size // 2)
        if self.use_noise and noise_mode != "none":
            strength = ops.cast(self.noise_strength, x.dtype)
            if noise_mode == "const":
                noise = ops.cast(self.noise_const, x.dtype)[None, :, :, None]
            else:
                shape = (ops.shape(x)[0], self.resolution, self.resolution, 1)
                noise = ops.cast(keras.random.normal(shape, seed=self.seed_generator), x.dtype)
            x = x + noise * strength
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, activation="lrelu", gain=math.sqrt(2) * gain, clamp=clamp)

    def compute_output_shape(self, input_shape, w_shape=None):
        return (input_shape[0], self.resolution, self.resolution, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "w_dim", "in_channels", "out_channels", "resolution", "kernel_size", "up",
            "use_noise", "conv_clamp", "seed")})
        return config


@keras.saving.register_keras_serializable(package="keras_afgan")
class ToRGB(keras.layers.Layer):
    """1x1 modulated conv without demodulation, styles times `1/sqrt(in_channels)`,
    then bias and clamp (linear).

    Args:
        w_dim: width of w.
        in_channels, out_channels: channels (out: the image's).
        conv_clamp: clamp, or None.
    """

    def __init__(self, w_dim, in_channels, out_channels, conv_clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.conv_clamp = conv_clamp
        self.affine = EqualizedDense(self.in_channels, bias_init=1.0,
                                     dtype=self.dtype_policy.variable_dtype, name="affine")

    def build(self, input_shape=None):
        self.affine.build((None, self.w_dim))
        self.kernel = self.add_weight(
            name="kernel", shape=(1, 1, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0), autocast=False)
        self.bias = self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros")

    @property
    def input_dtype(self):
        return self.dtype_policy.variable_dtype

    def call(self, x, w):
        styles = self.affine(w) * (1 / math.sqrt(self.in_channels))
        x = modulated_conv2d(ops.cast(x, self.compute_dtype), self.kernel, styles,
                             demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)

    def compute_output_shape(self, input_shape, w_shape=None):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "w_dim", "in_channels", "out_channels", "conv_clamp")})
        return config


@keras.saving.register_keras_serializable(package="keras_afgan")
class StyleGAN2Block(keras.layers.Layer):
    """One resolution of the StyleGAN2 synthesis network (`b{res}`).

    The first block (`in_channels=0`) starts from the learned constant
    `[4, 4, C]` (or, with `input_kind="fourier"`, config B: StyleGAN3's
    Fourier features on that grid, rotated and translated by its first w
    and by the user transform) and has one conv (`conv1`); the others upsample with `conv0`
    then convolve with `conv1`. `resnet` adds a 1x1 upsampling skip without
    bias (gain `sqrt(1/2)`) to conv1's output (gain `sqrt(1/2)`). The image
    from the previous block is upsampled and this block's ToRGB output added
    (`skip`; `resnet` and `orig` have ToRGB only in the last block).
    `call(x, img, ws)` takes this block's `num_conv + num_torgb` ws; the
    ToRGB's w is the next block's first.
    """

    def __init__(self, w_dim, in_channels, out_channels, resolution, img_channels, is_last,
                 architecture="skip", conv_clamp=256, use_noise=True, seed=None,
                 input_kind="const", **kwargs):
        super().__init__(**kwargs)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"Expected architecture in {ARCHITECTURES}. "
                             f"Received: {architecture!r}")
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"Expected input_kind in {INPUT_KINDS}. Received: {input_kind!r}")
        self.w_dim = int(w_dim)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.is_last = bool(is_last)
        self.architecture = architecture
        self.conv_clamp = conv_clamp
        self.use_noise = bool(use_noise)
        self.seed = seed
        self.input_kind = input_kind
        self.fourier_input = None
        if not self.in_channels and input_kind == "fourier":
            self.fourier_input = SynthesisInput(
                w_dim, channels=out_channels, size=resolution,
                sampling_rate=FOURIER_SAMPLING_RATE, bandwidth=FOURIER_BANDWIDTH, seed=seed,
                dtype=self.dtype_policy.variable_dtype, name="input")
        layer = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise,
                     conv_clamp=conv_clamp, dtype=self.dtype_policy)
        self.conv0 = self.skip = self.torgb = None
        if self.in_channels:
            self.conv0 = StyleConv(in_channels=in_channels, out_channels=out_channels, up=2,
                                   seed=None if seed is None else seed + 1, name="conv0", **layer)
        self.conv1 = StyleConv(in_channels=out_channels, out_channels=out_channels,
                               seed=None if seed is None else seed + 2, name="conv1", **layer)
        if self.is_last or architecture == "skip":
            self.torgb = ToRGB(w_dim, out_channels, img_channels, conv_clamp=conv_clamp,
                               dtype=self.dtype_policy, name="torgb")
        if self.in_channels and architecture == "resnet":
            self.skip = EqualizedConv2D(out_channels, 1, use_bias=False, up=2,
                                        dtype=self.dtype_policy, name="skip")
        self.num_conv = 1 + bool(self.in_channels)
        self.num_torgb = int(self.torgb is not None)

    def build(self, input_shape=None):
        r = self.resolution
        if self.fourier_input is not None:
            self.fourier_input.build()
        elif not self.in_channels:
            self.const = self.add_weight(
                name="const", shape=(r, r, self.out_channels),
                initializer=keras.initializers.RandomNormal(stddev=1.0))
        else:
            self.conv0.build()
        self.conv1.build()
        if self.torgb is not None:
            self.torgb.build()
        if self.skip is not None:
            self.skip.build((None, r // 2, r // 2, self.in_channels))

    def call(self, x, img, ws, noise_mode="random", transform=None):
        # ws: [N, num_conv + num_torgb, w_dim]; transform: [N, 3, 3] or None
        # (per-sample content transforms of the Fourier input).
        if self.fourier_input is not None:
            x = ops.cast(self.fourier_input(ws[:, 0], transform=transform), self.compute_dtype)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        elif not self.in_channels:
            const = ops.cast(self.const, self.compute_dtype)
            x = ops.broadcast_to(const[None], (ops.shape(ws)[0],) + tuple(const.shape))
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        elif self.architecture == "resnet":
            x = ops.cast(x, self.compute_dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(ops.cast(x, self.compute_dtype), ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode)
        if img is not None:
            img = upsample_2x(img)
        if self.torgb is not None:
            y = ops.cast(self.torgb(x, ws[:, self.num_conv]), "float32")
            img = y if img is None else img + y
        return x, img

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "w_dim", "in_channels", "out_channels", "resolution", "img_channels", "is_last",
            "architecture", "conv_clamp", "use_noise", "seed", "input_kind")})
        return config


@keras.saving.register_keras_serializable(package="keras_afgan")
class StyleGAN2SynthesisNetwork(keras.layers.Layer):
    """Maps `ws` `[N, num_ws, w_dim]` to NHWC images `[N, R, R, img_channels]`.

    Blocks `b4 ... bR` with `min(channel_base // res, channel_max)` channels.
    Under a mixed dtype policy the blocks at resolutions
    `>= max(2^(log2 R + 1 - num_fp16_res), 8)` compute in reduced precision;
    images are summed in float32.

    Args:
        w_dim: width of w.
        img_resolution: output size, a power of 2 >= 4.
        img_channels: output channels.
        channel_base, channel_max: channel schedule.
        num_fp16_res: reduced-precision resolutions under a mixed policy.
        conv_clamp: activation clamp, or None.
        architecture: "skip", "resnet" or "orig".
        use_noise: whether the convs have noise inputs.
        seed: seed of the stored and random noise (and config B's Fourier
            frequencies).
        input_kind: "const" (StyleGAN2) or "fourier" (config B: see
            `StyleGAN2Block`; `input` is then that layer and `call` takes
            per-sample `transform`s as StyleGAN3's synthesis does).
    """

    def __init__(self, w_dim, img_resolution, img_channels=3, channel_base=32768,
                 channel_max=512, num_fp16_res=4, conv_clamp=256, architecture="skip",
                 use_noise=True, seed=None, input_kind="const", **kwargs):
        super().__init__(**kwargs)
        r = img_resolution
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 4 or r & (r - 1):
            raise ValueError(
                f"Expected img_resolution to be a power of 2 >= 4. Received: {img_resolution!r}")
        self.w_dim = int(w_dim)
        self.img_resolution = int(r)
        self.img_channels = int(img_channels)
        self.channel_base = int(channel_base)
        self.channel_max = int(channel_max)
        self.num_fp16_res = int(num_fp16_res)
        self.conv_clamp = conv_clamp
        self.architecture = architecture
        self.use_noise = bool(use_noise)
        self.seed = seed
        self.input_kind = input_kind
        channels = stylegan2_channels(r, channel_base, channel_max)
        fp16_resolution = max(2 ** (int(np.log2(r)) + 1 - self.num_fp16_res), 8)
        self.blocks = []
        self.num_ws = 0
        for i, res in enumerate(channels):
            block = StyleGAN2Block(
                w_dim, in_channels=channels[res // 2] if res > 4 else 0,
                out_channels=channels[res], resolution=res, img_channels=img_channels,
                is_last=res == r, architecture=architecture, conv_clamp=conv_clamp,
                use_noise=use_noise, seed=None if seed is None else seed + 3 * i,
                input_kind=input_kind,
                dtype=self.dtype_policy if res >= fp16_resolution
                else self.dtype_policy.variable_dtype,
                name=f"b{res}")
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += self.blocks[-1].num_torgb

    @property
    def input(self):
        """Config B's Fourier-feature input layer (`.transform` is the user
        transform); None for a constant input."""
        return self.blocks[0].fourier_input

    @property
    def input_dtype(self):
        return self.dtype_policy.variable_dtype

    def build(self, input_shape=None):
        for block in self.blocks:
            block.build()

    def call(self, ws, noise_mode="random", update_emas=False, return_activations=False,
             transform=None, training=None):
        check_noise_mode(noise_mode)
        if transform is not None and self.input_kind != "fourier":
            raise ValueError("Expected transform=None: a constant input has no transform "
                             "(input_kind='const').")
        shape = tuple(ws.shape)
        if len(shape) != 3 or shape[1] != self.num_ws or shape[2] != self.w_dim:
            raise ValueError(
                f"Expected ws of shape [N, {self.num_ws}, {self.w_dim}]. Received: shape={shape}")
        ws = ops.cast(ws, "float32")
        x = img = None
        start = 0
        activations = {}
        for block in self.blocks:
            count = block.num_conv + block.num_torgb
            extra = {"transform": transform} if block.fourier_input is not None else {}
            x, img = block(x, img, ws[:, start:start + count], noise_mode=noise_mode, **extra)
            start += block.num_conv
            activations[block.name] = (x, img)
        if return_activations:
            return img, activations
        return img

    def compute_output_shape(self, ws_shape):
        r = self.img_resolution
        return (ws_shape[0], r, r, self.img_channels)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in (
            "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max",
            "num_fp16_res", "conv_clamp", "architecture", "use_noise", "seed", "input_kind")})
        return config
