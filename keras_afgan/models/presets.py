"""Named configurations, as data.

`stylegan3-t` and `stylegan3-r` are the paper's configs (R: 1x1 convs, radial
filters, doubled channel base and max). Every setting can be overridden.
"""

import copy

PRESETS = {
    "stylegan3-t": {
        "generator": {
            "z_dim": 512, "w_dim": 512, "channel_base": 32768, "channel_max": 512,
            "conv_kernel": 3, "use_radial_filters": False,
        },
        "discriminator": {"channel_base": 32768, "channel_max": 512},
    },
    "stylegan3-r": {
        "generator": {
            "z_dim": 512, "w_dim": 512, "channel_base": 65536, "channel_max": 1024,
            "conv_kernel": 1, "use_radial_filters": True,
        },
        "discriminator": {"channel_base": 32768, "channel_max": 512},
    },
}


def get_preset(name):
    """A deep copy of the preset `name` (`{"generator": {...}, "discriminator": {...}}`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Expected one of: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def generator_from_preset(name, img_resolution, **overrides):
    """A `Generator` with the preset's settings, `img_resolution` and overrides."""
    from keras_afgan.models.generator import Generator

    kwargs = get_preset(name)["generator"]
    kwargs.update(overrides)
    return Generator(img_resolution=img_resolution, **kwargs)


def discriminator_from_preset(name, img_resolution, **overrides):
    """A `Discriminator` with the preset's settings, `img_resolution` and overrides."""
    from keras_afgan.models.discriminator import Discriminator

    kwargs = get_preset(name)["discriminator"]
    kwargs.update(overrides)
    return Discriminator(img_resolution=img_resolution, **kwargs)


def preset_of(generator):
    """The name of the preset whose kind of layers (conv kernel, radial
    filters) `generator` has, or None."""
    s = generator.synthesis
    for name, preset in PRESETS.items():
        settings = preset["generator"]
        if (settings["conv_kernel"] == s.conv_kernel
                and settings["use_radial_filters"] == s.use_radial_filters):
            return name
    return None
