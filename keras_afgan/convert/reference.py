"""Weights in and out of the reference implementation's state-dict layout.

The reference stores NCHW-era layouts: dense weights `[out, in]`, conv
weights `[out, in, kh, kw]`, both without the equalized-learning-rate gain
(as keras_afgan stores them too). keras_afgan's kernels are `[in, out]` and
`[kh, kw, in, out]`. The discriminator's `b4.fc` flattens NCHW activations;
keras_afgan flattens NHWC, so its rows are permuted.

Filters (`up_filter`, `down_filter`, `resample_filter`) are buffers in the
reference and constants here: on import they are checked against the filters
this library designs for the same settings, which catches a mismatched
configuration early.
"""

import numpy as np

from keras_afgan.layers.schedule import discriminator_channels
from keras_afgan.layers.schedule import synthesis_spec
from keras_afgan.layers.stylegan2 import stylegan2_channels
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.stylegan2 import StyleGAN2Generator
from keras_afgan.ops.filter_design import resample_filter_1d

# The reference's generator classes: StyleGAN3's, and the StyleGAN2 generator
# as the StyleGAN3 repository (`networks_stylegan2`) and stylegan2-ada-pytorch
# (`networks`) define it: the same network, weights and state-dict names.
STYLEGAN3_GENERATOR = "training.networks_stylegan3.Generator"
STYLEGAN2_GENERATOR = "training.networks_stylegan2.Generator"
ADA_GENERATOR = "training.networks.Generator"
GENERATOR_CLASSES = (STYLEGAN3_GENERATOR, STYLEGAN2_GENERATOR, ADA_GENERATOR)

_G_SYNTHESIS_KEYS = (
    "channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff",
    "first_stopband", "last_stopband_rel", "margin_size", "output_scale", "conv_kernel",
    "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta",
    "num_fp16_res",
)


def _unexpected(kind, names):
    raise ValueError(f"Unexpected {kind}: {sorted(names)}")


def _listing(names, limit=24):
    names = sorted(names)
    if len(names) <= limit:
        return str(names)
    return f"{names[:limit]} and {len(names) - limit} more"


def generator_kwargs_from_reference(z_dim, c_dim, w_dim, img_resolution, img_channels=3,
                                    mapping_kwargs=None, **synthesis_kwargs):
    """Translate the reference's `G_kwargs` into `Generator` arguments."""
    kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                  img_channels=img_channels)
    mapping_kwargs = dict(mapping_kwargs or {})
    for ref, ours in (("num_layers", "mapping_layers"), ("lr_multiplier", "mapping_lr_multiplier"),
                      ("w_avg_beta", "w_avg_beta")):
        if ref in mapping_kwargs:
            kwargs[ours] = mapping_kwargs.pop(ref)
    if mapping_kwargs:
        _unexpected("mapping_kwargs", mapping_kwargs)
    unknown = set(synthesis_kwargs) - set(_G_SYNTHESIS_KEYS)
    if unknown:
        _unexpected("generator arguments", unknown)
    kwargs.update(synthesis_kwargs)
    return kwargs


# StyleGAN2 synthesis arguments that only choose how the reference computes
# (grouped or split convolutions, memory layout): accepted and ignored.
_STYLEGAN2_COMPUTE_ONLY = ("fused_modconv_default", "fp16_channels_last", "channels_last")
_STYLEGAN2_SYNTHESIS_KEYS = ("channel_base", "channel_max", "num_fp16_res", "conv_clamp",
                             "architecture", "use_noise")
# Arguments whose only accepted value is the one the reference's networks are
# built with (anything else would be a different network).
_STYLEGAN2_FIXED = {"resample_filter": [1, 3, 3, 1], "kernel_size": 3, "activation": "lrelu"}


def stylegan2_kwargs_from_reference(z_dim, c_dim, w_dim, img_resolution, img_channels=3,
                                    mapping_kwargs=None, synthesis_kwargs=None,
                                    class_name=STYLEGAN2_GENERATOR, **block_kwargs):
    """Translate a reference StyleGAN2 generator's kwargs into `StyleGAN2Generator` arguments.

    `networks_stylegan2.Generator` takes the synthesis arguments flat,
    stylegan2-ada-pytorch's `networks.Generator` in `synthesis_kwargs`; the
    class defaults differ (`num_fp16_res` 4 and `conv_clamp` 256 in the
    former, 0 and None in the latter) and are applied when absent.
    """
    if class_name not in (STYLEGAN2_GENERATOR, ADA_GENERATOR):
        raise ValueError(f"Expected a StyleGAN2 generator class in "
                         f"{(STYLEGAN2_GENERATOR, ADA_GENERATOR)}. Received: {class_name!r}")
    kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                  img_channels=img_channels)
    if class_name == ADA_GENERATOR:
        kwargs.update(num_fp16_res=0, conv_clamp=None)
    mapping_kwargs = dict(mapping_kwargs or {})
    for ref, ours in (("num_layers", "mapping_layers"), ("lr_multiplier", "mapping_lr_multiplier"),
                      ("w_avg_beta", "w_avg_beta")):
        if ref in mapping_kwargs:
            kwargs[ours] = mapping_kwargs.pop(ref)
    for ref in ("embed_features", "layer_features"):  # None means w_dim
        if mapping_kwargs.get(ref, None) in (None, w_dim):
            mapping_kwargs.pop(ref, None)
    if mapping_kwargs.get("activation", "lrelu") == "lrelu":
        mapping_kwargs.pop("activation", None)
    if mapping_kwargs:
        _unexpected("mapping_kwargs", mapping_kwargs)
    synthesis = dict(synthesis_kwargs or {}, **block_kwargs)
    for name in _STYLEGAN2_COMPUTE_ONLY:
        synthesis.pop(name, None)
    for name, value in _STYLEGAN2_FIXED.items():
        if name in synthesis:
            given = synthesis.pop(name)
            if (list(given) if isinstance(given, (list, tuple)) else given) != value:
                raise ValueError(f"Expected {name}={value!r} (the only value supported). "
                                 f"Received: {given!r}")
    unknown = set(synthesis) - set(_STYLEGAN2_SYNTHESIS_KEYS)
    if unknown:
        _unexpected("generator arguments", unknown)
    kwargs.update(synthesis)
    return kwargs


def discriminator_kwargs_from_reference(c_dim, img_resolution, img_channels=3,
                                        architecture="resnet", channel_base=32768,
                                        channel_max=512, num_fp16_res=4, conv_clamp=256,
                                        cmap_dim=None, block_kwargs=None, mapping_kwargs=None,
                                        epilogue_kwargs=None):
    """Translate the reference's `D_kwargs` into `Discriminator` arguments.

    The defaults are the reference class's (`num_fp16_res=4`,
    `conv_clamp=256`): its `train.py` passes them only with `--fp32`.
    `block_kwargs={'freeze_layers': N}` (always in `train.py`'s kwargs) is
    Freeze-D.
    """
    if architecture != "resnet":
        raise ValueError(f"Expected architecture='resnet'. Received: architecture={architecture!r}")
    block_kwargs = dict(block_kwargs or {})
    freeze_layers = block_kwargs.pop("freeze_layers", 0)
    if block_kwargs:
        _unexpected("block_kwargs", block_kwargs)
    kwargs = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                  channel_base=channel_base, channel_max=channel_max, conv_clamp=conv_clamp,
                  cmap_dim=cmap_dim, num_fp16_res=num_fp16_res, freeze_layers=freeze_layers)
    mapping_kwargs = dict(mapping_kwargs or {})
    for ref, ours in (("num_layers", "mapping_layers"), ("lr_multiplier", "mapping_lr_multiplier")):
        if ref in mapping_kwargs:
            kwargs[ours] = mapping_kwargs.pop(ref)
    if mapping_kwargs:
        _unexpected("mapping_kwargs", mapping_kwargs)
    epilogue_kwargs = dict(epilogue_kwargs or {})
    for ref in ("mbstd_group_size", "mbstd_num_channels"):
        if ref in epilogue_kwargs:
            kwargs[ref] = epilogue_kwargs.pop(ref)
    if epilogue_kwargs:
        _unexpected("epilogue_kwargs", epilogue_kwargs)
    return kwargs


# Each entry: reference name -> (keras variable, layout) where layout is one of
# "dense" ([out, in] <-> [in, out]), "conv" ([o, i, kh, kw] <-> [kh, kw, i, o]),
# "raw" (same array), "chw" ([C, H, W] <-> [H, W, C]: StyleGAN2's constant),
# or ("fc_nchw", channels, size) for D's b4.fc.


def _mapping_entries(prefix, mapping):
    entries = {}
    if mapping.embed is not None:
        entries[f"{prefix}.embed.weight"] = (mapping.embed.kernel, "dense")
        entries[f"{prefix}.embed.bias"] = (mapping.embed.bias, "raw")
    for i, fc in enumerate(mapping.fcs):
        entries[f"{prefix}.fc{i}.weight"] = (fc.kernel, "dense")
        entries[f"{prefix}.fc{i}.bias"] = (fc.bias, "raw")
    if mapping.w_avg is not None:
        entries[f"{prefix}.w_avg"] = (mapping.w_avg, "raw")
    return entries


def _generator_entries(G):
    entries = _mapping_entries("mapping", G.mapping)
    inp = G.synthesis.input
    entries.update({
        "synthesis.input.weight": (inp.kernel, "dense"),
        "synthesis.input.transform": (inp.transform, "raw"),
        "synthesis.input.freqs": (inp.freqs, "raw"),
        "synthesis.input.phases": (inp.phases, "raw"),
    })
    # The ablation switches (no reference counterpart) name their weights as
    # StyleGAN2 does, so fine-tuning and weight copies find them.
    if inp.affine is not None:
        entries["synthesis.input.affine.weight"] = (inp.affine.kernel, "dense")
        entries["synthesis.input.affine.bias"] = (inp.affine.bias, "raw")
    for layer in G.synthesis.synthesis_layers:
        p = f"synthesis.{layer.name}"
        entries.update({
            f"{p}.weight": (layer.kernel, "conv"),
            f"{p}.bias": (layer.bias, "raw"),
            f"{p}.magnitude_ema": (layer.magnitude_ema, "raw"),
            f"{p}.affine.weight": (layer.affine.kernel, "dense"),
            f"{p}.affine.bias": (layer.affine.bias, "raw"),
        })
        if layer.noise_const is not None:
            entries[f"{p}.noise_const"] = (layer.noise_const, "raw")
            entries[f"{p}.noise_strength"] = (layer.noise_strength, "raw")
    return entries


def _stylegan2_entries(G):
    entries = _mapping_entries("mapping", G.mapping)

    def style_layer(prefix, layer, noise):
        entries.update({
            f"{prefix}.weight": (layer.kernel, "conv"),
            f"{prefix}.bias": (layer.bias, "raw"),
            f"{prefix}.affine.weight": (layer.affine.kernel, "dense"),
            f"{prefix}.affine.bias": (layer.affine.bias, "raw"),
        })
        if noise and layer.use_noise:
            entries[f"{prefix}.noise_const"] = (layer.noise_const, "raw")
            entries[f"{prefix}.noise_strength"] = (layer.noise_strength, "raw")

    for block in G.synthesis.blocks:
        p = f"synthesis.{block.name}"
        if block.fourier_input is not None:  # config B (ours; no reference file has it)
            inp = block.fourier_input
            entries.update({
                f"{p}.input.weight": (inp.kernel, "dense"),
                f"{p}.input.transform": (inp.transform, "raw"),
                f"{p}.input.freqs": (inp.freqs, "raw"),
                f"{p}.input.phases": (inp.phases, "raw"),
                f"{p}.input.affine.weight": (inp.affine.kernel, "dense"),
                f"{p}.input.affine.bias": (inp.affine.bias, "raw"),
            })
        elif not block.in_channels:
            entries[f"{p}.const"] = (block.const, "chw")
        for name in ("conv0", "conv1", "torgb"):
            layer = getattr(block, name)
            if layer is not None:
                style_layer(f"{p}.{name}", layer, noise=name != "torgb")
        if block.skip is not None:
            entries[f"{p}.skip.weight"] = (block.skip.kernel, "conv")
    return entries


def _stylegan2_constants(G):
    f2 = np.outer(resample_filter_1d(), resample_filter_1d())
    constants = {}
    for block in G.synthesis.blocks:
        p = f"synthesis.{block.name}"
        constants[f"{p}.resample_filter"] = f2
        for name in ("conv0", "conv1", "skip"):
            if getattr(block, name) is not None:
                constants[f"{p}.{name}.resample_filter"] = f2
    return constants


def _generator_constants(G):
    constants = {}
    for layer in G.synthesis.synthesis_layers:
        for name in ("up_filter", "down_filter"):
            f = getattr(layer, name)
            if f is not None:
                constants[f"synthesis.{layer.name}.{name}"] = f
    return constants


def _conv_entries(prefix, conv):
    entries = {f"{prefix}.weight": (conv.kernel, "conv")}
    if conv.bias is not None:
        entries[f"{prefix}.bias"] = (conv.bias, "raw")
    return entries


def _discriminator_entries(D):
    entries = {}
    for block in D.blocks:
        p = f"b{block.resolution}"
        if block.fromrgb is not None:
            entries.update(_conv_entries(f"{p}.fromrgb", block.fromrgb))
        entries.update(_conv_entries(f"{p}.conv0", block.conv0))
        entries.update(_conv_entries(f"{p}.conv1", block.conv1))
        entries.update(_conv_entries(f"{p}.skip", block.skip))
    if D.mapping is not None:
        entries.update(_mapping_entries("mapping", D.mapping))
    ep = D.epilogue
    entries.update(_conv_entries("b4.conv", ep.conv))
    entries["b4.fc.weight"] = (ep.fc.kernel, ("fc_nchw", ep.in_channels, ep.resolution))
    entries["b4.fc.bias"] = (ep.fc.bias, "raw")
    entries["b4.out.weight"] = (ep.out.kernel, "dense")
    entries["b4.out.bias"] = (ep.out.bias, "raw")
    return entries


def _discriminator_constants(D):
    f2 = np.outer(resample_filter_1d(), resample_filter_1d())
    constants = {}
    for block in D.blocks:
        p = f"b{block.resolution}"
        constants[f"{p}.resample_filter"] = f2
        for name in ("fromrgb", "conv0", "conv1", "skip"):
            if getattr(block, name) is not None:
                constants[f"{p}.{name}.resample_filter"] = f2
    constants["b4.conv.resample_filter"] = f2
    return constants


def _to_keras(array, layout):
    array = np.asarray(array, dtype=np.float32)
    if layout == "dense":
        return array.T
    if layout == "conv":
        return array.transpose(2, 3, 1, 0)
    if layout == "raw":
        return array
    if layout == "chw":
        return array.transpose(1, 2, 0)
    _, channels, size = layout  # [out, C*H*W] (NCHW flatten) -> [H*W*C, out]
    out = array.shape[0]
    return array.reshape(out, channels, size, size).transpose(0, 2, 3, 1).reshape(out, -1).T


def _to_reference(array, layout):
    array = np.asarray(array, dtype=np.float32)
    if layout == "dense":
        return array.T
    if layout == "conv":
        return array.transpose(3, 2, 0, 1)
    if layout == "raw":
        return array
    if layout == "chw":
        return array.transpose(2, 0, 1)
    _, channels, size = layout
    out = array.shape[1]
    return array.T.reshape(out, size, size, channels).transpose(0, 3, 1, 2).reshape(out, -1)


def _load(model, state, entries, constants, what):
    state = {k: np.asarray(v) for k, v in state.items()}
    missing = sorted(set(entries) - set(state))
    unexpected = sorted(set(state) - set(entries) - set(constants))
    if missing or unexpected:
        raise ValueError(
            f"The {what} state does not match its settings. Missing: {_listing(missing)}. "
            f"Unexpected: {_listing(unexpected)}"
        )
    for name, expected in constants.items():
        if name in state and not np.allclose(state[name], expected, rtol=0, atol=1e-5):
            raise ValueError(
                f"Filter {name!r} differs from the one designed for these settings "
                f"(max abs difference {np.max(np.abs(state[name] - expected)):.3g}): "
                "the constructor arguments do not match the weights."
            )
    for name, (variable, layout) in entries.items():
        value = _to_keras(state[name], layout)
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Expected {name!r} to have shape {_to_reference(np.zeros(variable.shape), layout).shape}"
                f" for these settings. Received: shape={np.shape(state[name])}"
            )
        variable.assign(value)
    return model


def _save(entries, constants, include_constants):
    state = {name: _to_reference(np.asarray(v), layout) for name, (v, layout) in entries.items()}
    if include_constants:
        state.update({name: np.asarray(f, np.float32) for name, f in constants.items()})
    return state


# Sizes a network's settings may take (StyleGAN3 at 1024 px uses at most
# 1024 channels, 512-wide latents and 14 layers): checked before anything is
# built, so that settings read from a file cannot ask for terabytes.
_LIMITS = {"z_dim": (0, 1 << 16), "w_dim": (1, 1 << 16), "c_dim": (0, 1 << 20),
           "img_channels": (1, 64), "channel_base": (1, 1 << 24), "channel_max": (1, 1 << 16),
           "num_layers": (1, 256), "mapping_layers": (0, 64), "margin_size": (0, 1024),
           "cmap_dim": (1, 1 << 16)}
_MAX_RESOLUTION = 1 << 14


def _check_settings(kwargs, what, min_resolution=16):
    for name, (low, high) in _LIMITS.items():
        value = kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                low <= value <= high):
            raise ValueError(f"Expected {what} setting {name} to be an integer in "
                             f"[{low}, {high}]. Received: {value!r}")
    resolution = kwargs.get("img_resolution")
    if not isinstance(resolution, (int, np.integer)) or not (
            min_resolution <= resolution <= _MAX_RESOLUTION):
        raise ValueError(f"Expected {what} setting img_resolution to be a power of 2 in "
                         f"[{min_resolution}, {_MAX_RESOLUTION}]. Received: {resolution!r}")


def _check_state_size(state, floor, what):
    """Refuse settings that need more weights than the state holds (checked
    before building: every weight must come from the state)."""
    held = sum(int(np.size(v)) for v in state.values())
    if floor > held:
        raise ValueError(
            f"The {what} settings describe at least {floor:,} weights; the state holds "
            f"{held:,} values. The settings do not match the weights (refusing to build it).")


def _generator_floor(kwargs):
    """A lower bound on a generator's weight count: its convolutions and mapping layers."""
    spec_args = ("channel_base", "channel_max", "num_layers", "num_critical", "margin_size",
                 "conv_kernel", "img_channels")
    spec = synthesis_spec(kwargs["img_resolution"],
                          **{k: kwargs[k] for k in spec_args if k in kwargs})
    floor = sum(layer.in_channels * layer.out_channels * layer.conv_kernel**2
                for layer in spec.layers)
    w_dim, c_dim = kwargs["w_dim"], kwargs.get("c_dim", 0)
    layers = kwargs.get("mapping_layers", 2)
    if layers:
        floor += (kwargs["z_dim"] + (w_dim if c_dim else 0)) * w_dim
        floor += (layers - 1) * w_dim * w_dim
    return floor + c_dim * w_dim


def _stylegan2_floor(kwargs):
    """A lower bound on a StyleGAN2 generator's weight count: its 3x3 convolutions."""
    channels = stylegan2_channels(kwargs["img_resolution"], kwargs.get("channel_base", 32768),
                                  kwargs.get("channel_max", 512))
    return sum(channels[res] * (channels[res] + (channels[res // 2] if res > 4 else 0)) * 9
               for res in channels)


def _discriminator_floor(kwargs):
    """A lower bound on a discriminator's weight count: its 3x3 convolutions."""
    channels = discriminator_channels(kwargs["img_resolution"], kwargs.get("channel_base", 32768),
                                      kwargs.get("channel_max", 512))
    floor = sum(channels[res] * (channels[res] + channels[res // 2]) * 9
                for res in channels if res > 4)
    return floor + channels[4] * channels[4] * 9 + kwargs.get("c_dim", 0)


def generator_from_reference(state, class_name=STYLEGAN3_GENERATOR, **G_kwargs):
    """Build a generator from the reference's state dict and `G_kwargs`.

    Args:
        state: maps reference state-dict names (e.g. `mapping.fc0.weight`,
            `synthesis.L3_36_64.affine.weight`) to numpy arrays.
        class_name: the reference's class: `training.networks_stylegan3.Generator`
            (a `Generator`), or `training.networks_stylegan2.Generator` /
            stylegan2-ada-pytorch's `training.networks.Generator` (a
            `StyleGAN2Generator`).
        **G_kwargs: the reference's generator constructor arguments
            (`z_dim, c_dim, w_dim, img_resolution, img_channels,
            mapping_kwargs={...}, channel_base, ...`).

    The settings are checked against sane bounds and against the number of
    values in `state` before the generator is built.
    """
    if class_name not in GENERATOR_CLASSES:
        raise ValueError(f"Expected class_name in {GENERATOR_CLASSES}. Received: {class_name!r}")
    if class_name != STYLEGAN3_GENERATOR:
        kwargs = stylegan2_kwargs_from_reference(class_name=class_name, **G_kwargs)
        _check_settings(kwargs, "generator", min_resolution=4)
        _check_state_size(state, _stylegan2_floor(kwargs), "generator")
        G = StyleGAN2Generator(**kwargs)
        return _load(G, state, _stylegan2_entries(G), _stylegan2_constants(G), "generator")
    kwargs = generator_kwargs_from_reference(**G_kwargs)
    _check_settings(kwargs, "generator")
    _check_state_size(state, _generator_floor(kwargs), "generator")
    G = Generator(**kwargs)
    return _load(G, state, _generator_entries(G), _generator_constants(G), "generator")


def discriminator_from_reference(state, **D_kwargs):
    """Build a `Discriminator` from the reference's state dict and `D_kwargs`
    (checked as `generator_from_reference` checks its settings)."""
    kwargs = discriminator_kwargs_from_reference(**D_kwargs)
    _check_settings(kwargs, "discriminator")
    _check_state_size(state, _discriminator_floor(kwargs), "discriminator")
    D = Discriminator(**kwargs)
    return _load(D, state, _discriminator_entries(D), _discriminator_constants(D), "discriminator")


def reference_variables(model):
    """`{reference state-dict name: variable}` for every weight of a `Generator`
    or `Discriminator` (parameters and buffers alike)."""
    if isinstance(model, Generator):
        entries = _generator_entries(model)
    elif isinstance(model, StyleGAN2Generator):
        entries = _stylegan2_entries(model)
    elif isinstance(model, Discriminator):
        entries = _discriminator_entries(model)
    else:
        raise ValueError(
            f"Expected a Generator, StyleGAN2Generator or Discriminator. "
            f"Received: {type(model).__name__}")
    return {name: variable for name, (variable, _) in entries.items()}


def generator_to_reference(G, include_constants=True):
    """The reference state dict (numpy arrays) of a keras_afgan `Generator` or
    `StyleGAN2Generator`."""
    if isinstance(G, StyleGAN2Generator):
        return _save(_stylegan2_entries(G), _stylegan2_constants(G), include_constants)
    return _save(_generator_entries(G), _generator_constants(G), include_constants)


def discriminator_to_reference(D, include_constants=True):
    """The reference state dict (numpy arrays) of a keras_afgan `Discriminator`."""
    return _save(_discriminator_entries(D), _discriminator_constants(D), include_constants)
