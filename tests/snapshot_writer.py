"""Writes snapshot pickles as the reference's training loop does, for the import tests.

The structure is the one the reference's `pickle.dump(snapshot_data)`
produces: a dict with `G`, `D`, `G_ema`, `augment_pipe` (or None) and
`training_set_kwargs` (a plain dict). Each network (and each of its
submodules) is a call to `torch_utils.persistence._reconstruct_persistent_obj`
with a `meta` dict (`type`, `version`, `module_src`, `class_name`, `state`);
the state is a real `torch.nn.Module.__dict__` (parameters, buffers, hook
dicts, `_non_persistent_buffers_set`, submodules) plus the constructor
arguments `_init_args` / `_init_kwargs` and plain attributes (numbers, numpy
arrays), as the reference's persistent classes keep them.

The constructor arguments are exactly those the reference's `train.py` and
`training_loop.py` pass (`train_kwargs`): G gets `z_dim, w_dim,
mapping_kwargs={'num_layers': ...}, channel_base, channel_max,
magnitude_ema_beta` (+ `conv_kernel=1, use_radial_filters=True` for config
R) and `c_dim, img_resolution, img_channels`; D gets
`block_kwargs={'freeze_layers': N}, mapping_kwargs={}, epilogue_kwargs=
{'mbstd_group_size': G}`, `channel_base, channel_max` and the same common
arguments; `--fp32` adds `num_fp16_res=0, conv_clamp=None` to both. The
Freeze-D layers' weights are buffers, as the reference registers them.

`torch_utils.persistence` and `dnnlib.util` are stand-ins defined here,
registered in `sys.modules` only while writing; `module_src` raises if
anything ever executes it.
"""

import contextlib
import pickle
import sys
import types

import numpy as np
import torch

# Names the reference registers as buffers (the rest are parameters).
BUFFERS = ("w_avg", "transform", "freqs", "phases", "magnitude_ema", "up_filter",
           "down_filter", "resample_filter", "noise_const")
# module_src is kept as text and must never run: if it did, this would raise.
MODULE_SRC = "raise SystemExit('module_src was executed')\n"
# The augmentation pipe train.py builds (`--augpipe=bgc`, the default).
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
           contrast=1, lumaflip=1, hue=1, saturation=1)
# Classes of the reference's submodules, by attribute name.
_CLASSES = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork",
            "input": "SynthesisInput", "mbstd": "MinibatchStdLayer"}


def _reconstruct_persistent_obj(meta):  # only its name is pickled
    raise AssertionError("the stand-in persistence module is not for loading")


class EasyDict(dict):
    pass


class Persistent:
    """Pickles as the reference's persistent classes do."""

    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=MODULE_SRC,
                    class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


@contextlib.contextmanager
def stand_in_modules():
    modules = {name: types.ModuleType(name) for name in (
        "torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    EasyDict.__module__ = "dnnlib.util"
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _class_of(path, name):
    if name in _CLASSES:
        return _CLASSES[name]
    if path.startswith("synthesis."):  # a StyleGAN2 generator's blocks and layers
        if "." not in path[len("synthesis."):]:
            return "SynthesisBlock"
        return {"conv0": "SynthesisLayer", "conv1": "SynthesisLayer", "torgb": "ToRGBLayer",
                "skip": "Conv2dLayer"}.get(name, "FullyConnectedLayer")
    if name.startswith("L") and "_" in name:
        return "SynthesisLayer"
    if name == "b4":
        return "DiscriminatorEpilogue"
    if name.startswith("b") and name[1:].isdigit():
        return "DiscriminatorBlock"
    if name in ("fromrgb", "conv0", "conv1", "skip", "conv"):
        return "Conv2dLayer"
    return "FullyConnectedLayer"


def _empty_module_state():
    """A fresh `torch.nn.Module.__dict__` (hooks, sets and all) as the installed torch has it."""
    state = dict(torch.nn.Module().eval().__dict__)
    state["_parameters"], state["_buffers"] = {}, {}
    state["_modules"] = {}
    return state


def _attributes(class_name, path):
    """Plain attributes the reference's modules carry (numpy values included)."""
    if class_name == "SynthesisLayer":
        return dict(use_fp16=False, in_size=np.broadcast_to(np.asarray(36), [2]),
                    in_sampling_rate=np.float64(16.0), up_taps=1, conv_clamp=256)
    if class_name == "Conv2dLayer":
        return dict(activation="lrelu", weight_gain=np.float64(0.25), act_gain=1.4142135623730951)
    return {}


def _module_tree(flat_state, class_name, init_kwargs, frozen=(), attributes=None, extra=(),
                 plain_leaf=None):
    """Nest `name.sub.param -> array` into persistent modules.

    `frozen`: module paths whose weight and bias are buffers (Freeze-D);
    `extra`: paths of submodules without parameters (e.g. `b4.mbstd`);
    `plain_leaf`: the name of a plain `torch.nn.Identity` child (a torch
    module that is not a persistent class, pickled by torch itself).
    """
    root = _empty_module_state()
    nodes = {"": root}

    def node(path):
        if path in nodes:
            return nodes[path]
        parent, _, name = path.rpartition(".")
        cls = _class_of(path, name)
        state = _empty_module_state()
        state.update(_attributes(cls, path))
        state.update(_init_args=(), _init_kwargs={})
        node(parent)["_modules"][name] = Persistent(cls, state)
        nodes[path] = state
        return state

    for path in extra:
        node(path)
    for name, value in flat_state.items():
        path, _, leaf = name.rpartition(".")
        target = node(path)
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            target["_buffers"][leaf] = value  # an object that pickles as a tensor (tests)
            continue
        # A torch tensor goes in as it is (a test's hand-made view, say).
        tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(
            np.array(value, np.float32))
        if leaf in BUFFERS or path in frozen:
            target["_buffers"][leaf] = tensor
        else:
            target["_parameters"][leaf] = torch.nn.Parameter(tensor, requires_grad=False)
    if plain_leaf is not None:
        root["_modules"][plain_leaf] = torch.nn.Identity().eval()
    root.update(attributes or {})
    root.update(_init_args=(), _init_kwargs=dict(init_kwargs), training=False)
    return Persistent(class_name, root)


def _easy(value):
    if isinstance(value, dict):
        return EasyDict({k: _easy(v) for k, v in value.items()})
    return value


def train_kwargs(G_kwargs, D_kwargs, fp32=False, freezed=0):
    """(G, D) constructor kwargs as the reference's train.py and training loop pass them.

    `G_kwargs` / `D_kwargs`: the networks' settings in the reference's form
    (a golden case's JSON, or what `generator_to_reference` describes). Only
    what train.py sets is kept: class defaults it never passes (num_layers,
    conv_kernel=3, num_fp16_res, conv_clamp without --fp32, ...) are left out.
    """
    mapping = G_kwargs.get("mapping_kwargs", {})
    G = dict(z_dim=G_kwargs["z_dim"], w_dim=G_kwargs["w_dim"],
             mapping_kwargs=EasyDict(num_layers=mapping.get("num_layers", 2)),
             channel_base=G_kwargs["channel_base"], channel_max=G_kwargs["channel_max"],
             magnitude_ema_beta=G_kwargs["magnitude_ema_beta"])
    if G_kwargs.get("conv_kernel", 3) == 1:  # config R: its G has base and max doubled
        G.update(conv_kernel=1, use_radial_filters=True)
    epilogue = D_kwargs.get("epilogue_kwargs", {})
    D = dict(block_kwargs=EasyDict(freeze_layers=freezed), mapping_kwargs=EasyDict(),
             epilogue_kwargs=EasyDict(mbstd_group_size=epilogue.get("mbstd_group_size", 4)),
             channel_base=D_kwargs["channel_base"], channel_max=D_kwargs["channel_max"])
    if fp32:
        G.update(num_fp16_res=0, conv_clamp=None)
        D.update(num_fp16_res=0, conv_clamp=None)
    common = {k: G_kwargs[k] for k in ("c_dim", "img_resolution", "img_channels")}
    return dict(G, **common), dict(D, **common)


def frozen_layers(D_state, freezed):
    """The module paths of D's first `freezed` layers, counted from the input."""
    blocks = sorted({int(name.split(".")[0][1:]) for name in D_state
                     if name.startswith("b") and not name.startswith("b4.")}, reverse=True)
    order = []
    for res in blocks:
        for layer in ("fromrgb", "conv0", "conv1", "skip"):
            if f"b{res}.{layer}.weight" in D_state:
                order.append(f"b{res}.{layer}")
    return order[:freezed]


def augment_pipe(p, **kwargs):
    """The reference's AugmentPipe as train.py builds it (bgc), with probability `p`."""
    kwargs = dict(BGC, **kwargs)
    state = _empty_module_state()
    state["_buffers"].update(
        p=torch.tensor(float(p), dtype=torch.float32),
        Hz_geom=torch.linspace(-0.1, 0.8, 12, dtype=torch.float32),
        Hz_fbank=torch.ones((4, 7), dtype=torch.float32))
    state.update({k: float(v) for k, v in kwargs.items()})
    state.update(imgfilter_bands=[1, 1, 1, 1], _init_args=(), _init_kwargs=dict(kwargs),
                 training=False)
    return Persistent("AugmentPipe", state)


def write_snapshot(path, G_state, G_kwargs, D_state, D_kwargs, G_ema_state=None,
                   networks=("G", "D", "G_ema"), augment_p=None, fp32=False, freezed=0,
                   init_kwargs=None, extra=None, protocol=None, edit=None):
    """Write a snapshot pickle as the reference's training loop would.

    Args:
        path: where to write.
        G_state, D_state: reference state dicts (`name -> array`).
        G_kwargs, D_kwargs: the networks' settings (reference form), turned
            into train.py's constructor kwargs by `train_kwargs`.
        G_ema_state: G_ema's state (default: G's).
        networks: which of G, D, G_ema to write.
        augment_p: the AugmentPipe's `p`; None writes `augment_pipe=None`
            (trained without augmentation).
        fp32, freezed: train.py's `--fp32` and `--freezed`.
        init_kwargs: `{"G" | "D" | "augment_pipe": {...}}`, constructor
            arguments to add (G's also go to G_ema).
        extra: entries to add to (or replace in) the top-level dict.
        protocol: the pickle protocol (default: pickle's, as the reference).
        edit: called with the top-level dict before it is written (networks
            as `Persistent(class_name, state)`), to damage it.
    """
    g_kwargs, d_kwargs = train_kwargs(G_kwargs, D_kwargs, fp32=fp32, freezed=freezed)
    init_kwargs = init_kwargs or {}
    g_kwargs.update(init_kwargs.get("G", {}))
    d_kwargs.update(_easy(init_kwargs.get("D", {})))
    g_attributes = {k: g_kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution",
                                             "img_channels")}
    states = {"G": G_state, "G_ema": G_state if G_ema_state is None else G_ema_state}
    data = {}
    for key in ("G", "D", "G_ema"):
        if key not in networks:
            continue
        if key == "D":
            data[key] = _module_tree(D_state, "Discriminator", d_kwargs,
                                     frozen=frozen_layers(D_state, freezed), extra=("b4.mbstd",))
        else:
            data[key] = _module_tree(states[key], "Generator", g_kwargs,
                                     attributes=dict(g_attributes, num_ws=16),
                                     plain_leaf="identity" if key == "G" else None)
    data["augment_pipe"] = (None if augment_p is None else
                            augment_pipe(augment_p, **init_kwargs.get("augment_pipe", {})))
    data["training_set_kwargs"] = dict(
        class_name="training.dataset.ImageFolderDataset", path="~/datasets/data.zip",
        use_labels=bool(g_kwargs["c_dim"]), max_size=None, xflip=False,
        resolution=g_kwargs["img_resolution"], random_seed=0)
    data.update(extra or {})
    if edit is not None:
        edit(data)
    with stand_in_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return path


def write_case_snapshot(path, case, **kwargs):
    """`write_snapshot` with a golden case's weights and settings."""
    return write_snapshot(path, case.state("G"), case.meta["G_kwargs"], case.state("D"),
                          case.meta["D_kwargs"], **kwargs)


def write_model_snapshot(path, G, D, G_ema=None, **kwargs):
    """`write_snapshot` for keras_afgan networks (through the reference layout)."""
    from keras_afgan.convert import discriminator_to_reference
    from keras_afgan.convert import generator_to_reference

    s = G.synthesis
    G_kwargs = dict(z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, img_resolution=G.img_resolution,
                    img_channels=G.img_channels, channel_base=s.channel_base,
                    channel_max=s.channel_max, magnitude_ema_beta=s.magnitude_ema_beta,
                    conv_kernel=s.conv_kernel, mapping_kwargs={"num_layers": G.mapping_layers})
    D_kwargs = dict(channel_base=D.channel_base, channel_max=D.channel_max,
                    epilogue_kwargs={"mbstd_group_size": D.mbstd_group_size})
    return write_snapshot(
        path, generator_to_reference(G), G_kwargs, discriminator_to_reference(D), D_kwargs,
        G_ema_state=None if G_ema is None else generator_to_reference(G_ema), **kwargs)


def stylegan2_train_kwargs(G_kwargs, flavour):
    """A StyleGAN2 generator's constructor kwargs as the reference writes them.

    `flavour="stylegan3"`: the StyleGAN3 repository's `train.py --cfg=stylegan2`
    (class `training.networks_stylegan2.Generator`): `z_dim, w_dim,
    mapping_kwargs={'num_layers': 8}, channel_base, channel_max,
    fused_modconv_default='inference_only'`, plus the case's `architecture`.
    `flavour="ada"`: stylegan2-ada-pytorch's `train.py` (class
    `training.networks.Generator`): `z_dim, w_dim, mapping_kwargs={'num_layers':
    8}, synthesis_kwargs={channel_base, channel_max, num_fp16_res: 4,
    conv_clamp: 256}` (plus `architecture` when not the default).
    Both add `c_dim, img_resolution, img_channels`.
    """
    mapping = EasyDict(num_layers=G_kwargs.get("mapping_kwargs", {}).get("num_layers", 8))
    common = {k: G_kwargs[k] for k in ("c_dim", "img_resolution", "img_channels")}
    if flavour == "stylegan3":
        return dict(z_dim=G_kwargs["z_dim"], w_dim=G_kwargs["w_dim"], mapping_kwargs=mapping,
                    channel_base=G_kwargs["channel_base"], channel_max=G_kwargs["channel_max"],
                    fused_modconv_default="inference_only",
                    architecture=G_kwargs.get("architecture", "skip"), **common)
    synthesis = EasyDict(channel_base=G_kwargs["channel_base"],
                         channel_max=G_kwargs["channel_max"], num_fp16_res=4, conv_clamp=256)
    if G_kwargs.get("architecture", "skip") != "skip":
        synthesis["architecture"] = G_kwargs["architecture"]
    return dict(z_dim=G_kwargs["z_dim"], w_dim=G_kwargs["w_dim"], mapping_kwargs=mapping,
                synthesis_kwargs=synthesis, **common)


def write_stylegan2_snapshot(path, G_state, G_kwargs, flavour, networks=("G", "G_ema"),
                             D=None):
    """A snapshot pickle with a StyleGAN2 generator as G and G_ema (see
    `stylegan2_train_kwargs` for `flavour`); `D`: optional `(D_state, D_kwargs)`."""
    g_kwargs = stylegan2_train_kwargs(G_kwargs, flavour)
    attributes = {k: g_kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution",
                                           "img_channels")}
    data = {key: _module_tree(G_state, "Generator", g_kwargs, attributes=attributes)
            for key in networks}
    if D is not None:
        D_state, D_kwargs = D
        _, d_kwargs = train_kwargs(dict(G_kwargs, magnitude_ema_beta=0.999), D_kwargs)
        data["D"] = _module_tree(D_state, "Discriminator", d_kwargs, extra=("b4.mbstd",))
    data["augment_pipe"] = None
    data["training_set_kwargs"] = None
    with stand_in_modules(), open(path, "wb") as f:
        pickle.dump(data, f)
    return path
