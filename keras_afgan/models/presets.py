"""Named configurations, as data: the one place that knows what makes each config.

`stylegan3-t` and `stylegan3-r` are the paper's configs. R differs from T in
data only: 1x1 convolutions, radial (jinc) down filters, twice the
generator's channel base and maximum, and a blur on every image the
discriminator sees at the start of training (`blur_init_sigma`, fading out).
`stylegan2` is the paper's baseline (config A): the StyleGAN2 generator
(`generator_class`), an 8-layer mapping network, and its training recipe:
style mixing (0.9), path-length regularisation (weight 2, lazy every 4
iterations) and a G learning rate of 0.002 (`g_lr`; StyleGAN3's 0.0025).
`config-b` is config A with StyleGAN3's Fourier features in place of the
constant (the paper's config B, which was never released; docs/design.md
§8.6 states what it builds).
`channel_base`/`channel_max` are the reference's `--cbase`/`--cmax`: the
discriminator's channels; the generator's are `generator_channel_scale`
times them. Every setting can be overridden.
"""

import copy

from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.stylegan2 import StyleGAN2Generator

GENERATOR_CLASSES = {"Generator": Generator, "StyleGAN2Generator": StyleGAN2Generator}

PRESETS = {
    "stylegan3-t": {
        "generator_class": "Generator",
        "channel_base": 32768,
        "channel_max": 512,
        "generator_channel_scale": 1,
        "generator": {"z_dim": 512, "w_dim": 512, "mapping_layers": 2, "conv_kernel": 3,
                      "use_radial_filters": False},
        "discriminator": {},
        "g_lr": 0.0025,
        # `AliasFreeGAN` arguments of a run from scratch.
        "training": {"blur_init_sigma": 0.0},
    },
    "stylegan3-r": {
        "generator_class": "Generator",
        "channel_base": 32768,
        "channel_max": 512,
        "generator_channel_scale": 2,
        "generator": {"z_dim": 512, "w_dim": 512, "mapping_layers": 2, "conv_kernel": 1,
                      "use_radial_filters": True},
        "discriminator": {},
        "g_lr": 0.0025,
        "training": {"blur_init_sigma": 10.0},
    },
    "stylegan2": {
        "generator_class": "StyleGAN2Generator",
        "channel_base": 32768,
        "channel_max": 512,
        "generator_channel_scale": 1,
        "generator": {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "architecture": "skip"},
        "discriminator": {},
        "g_lr": 0.002,
        "training": {"blur_init_sigma": 0.0, "mixing_prob": 0.9, "pl_weight": 2.0,
                     "g_reg_interval": 4},
    },
    # The paper's config B (never released): config A with the 4x4 constant
    # replaced by Fourier features on the same grid (docs/design.md §8.6).
    "config-b": {
        "generator_class": "StyleGAN2Generator",
        "channel_base": 32768,
        "channel_max": 512,
        "generator_channel_scale": 1,
        "generator": {"z_dim": 512, "w_dim": 512, "mapping_layers": 8, "architecture": "skip",
                      "input_kind": "fourier"},
        "discriminator": {},
        "g_lr": 0.002,
        "training": {"blur_init_sigma": 0.0, "mixing_prob": 0.9, "pl_weight": 2.0,
                     "g_reg_interval": 4},
    },
}


def is_generator(model):
    """Whether `model` is a keras_afgan generator (`Generator` or `StyleGAN2Generator`)."""
    return isinstance(model, tuple(GENERATOR_CLASSES.values()))


def get_preset(name):
    """A deep copy of the preset `name` (see `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Expected one of: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def network_kwargs(name, channel_base=None, channel_max=None):
    """`(generator_kwargs, discriminator_kwargs)` of preset `name`.

    `channel_base`/`channel_max` are the reference's `--cbase`/`--cmax`
    (default: the preset's): the discriminator gets them, the generator
    `generator_channel_scale` times them.
    """
    preset = get_preset(name)
    base = preset["channel_base"] if channel_base is None else channel_base
    top = preset["channel_max"] if channel_max is None else channel_max
    scale = preset["generator_channel_scale"]
    generator = dict(preset["generator"], channel_base=base * scale, channel_max=top * scale)
    discriminator = dict(preset["discriminator"], channel_base=base, channel_max=top)
    return generator, discriminator


def training_kwargs(name):
    """The `AliasFreeGAN` arguments preset `name` sets for a run from scratch."""
    return get_preset(name)["training"]


def generator_class(name):
    """The generator class of preset `name` (`Generator` or `StyleGAN2Generator`)."""
    return GENERATOR_CLASSES[get_preset(name)["generator_class"]]


def generator_from_preset(preset, img_resolution, **overrides):
    """A generator of preset `preset` with `img_resolution` and overrides
    (any constructor argument, `name` and `dtype` too)."""
    kwargs, _ = network_kwargs(preset)
    kwargs.update(overrides)
    return generator_class(preset)(img_resolution=img_resolution, **kwargs)


def discriminator_from_preset(preset, img_resolution, **overrides):
    """A `Discriminator` of preset `preset` with `img_resolution` and overrides."""
    _, kwargs = network_kwargs(preset)
    kwargs.update(overrides)
    return Discriminator(img_resolution=img_resolution, **kwargs)


def preset_of(generator):
    """The name of the preset whose kind of generator (class; conv kernel and
    radial filters for StyleGAN3) `generator` is, or None."""
    s = generator.synthesis
    for name, preset in PRESETS.items():
        if not isinstance(generator, GENERATOR_CLASSES[preset["generator_class"]]):
            continue
        if isinstance(generator, StyleGAN2Generator):
            if preset["generator"].get("input_kind", "const") == s.input_kind:
                return name
            continue
        settings = preset["generator"]
        if (settings["conv_kernel"] == s.conv_kernel
                and settings["use_radial_filters"] == s.use_radial_filters):
            return name
    return None
