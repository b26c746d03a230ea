"""Writes snapshot pickles in the reference's format, for the import tests.

The structure is the one the reference's `pickle.dump` produces: a dict of
networks, each a call to `torch_utils.persistence._reconstruct_persistent_obj`
with a `meta` dict (`type`, `version`, `module_src`, `class_name`, `state`),
the state being a torch module's `__dict__` (`_parameters`, `_buffers`,
`_modules`, `_init_args`, `_init_kwargs`, plain attributes) with torch
tensors and parameters. `torch_utils.persistence` and `dnnlib.util` are
stand-ins defined here, registered in `sys.modules` only while writing.
"""

import collections
import contextlib
import pickle
import sys
import types

import torch

# Names the reference registers as buffers (the rest are parameters).
BUFFERS = ("w_avg", "transform", "freqs", "phases", "magnitude_ema", "up_filter",
           "down_filter", "resample_filter")
# module_src is kept as text and must never run: if it did, this would raise.
MODULE_SRC = "raise SystemExit('module_src was executed')\n"


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


def _module_tree(flat_state, class_name, init_kwargs, plain_leaf=None):
    """Nest `name.sub.param -> array` into persistent modules."""
    root = {"_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(),
            "_modules": collections.OrderedDict()}
    for name, value in flat_state.items():
        *path, leaf = name.split(".")
        node = root
        for part in path:
            child = node["_modules"].get(part)
            if child is None:
                child = Persistent(part.capitalize(), {
                    "_parameters": collections.OrderedDict(),
                    "_buffers": collections.OrderedDict(),
                    "_modules": collections.OrderedDict(), "training": True})
                node["_modules"][part] = child
            node = child.state
        tensor = torch.from_numpy(value.copy())
        if leaf in BUFFERS:
            node["_buffers"][leaf] = tensor
        else:
            node["_parameters"][leaf] = torch.nn.Parameter(tensor, requires_grad=False)
    if plain_leaf is not None:  # a plain torch.nn module without parameters
        root["_modules"][plain_leaf] = torch.nn.Identity()
    root.update(_init_args=(), _init_kwargs=init_kwargs, training=False)
    return Persistent(class_name, root)


def _easy(value):
    if isinstance(value, dict):
        return EasyDict({k: _easy(v) for k, v in value.items()})
    return value


def write_snapshot(path, case, networks=("G", "D", "G_ema"), extra=None):
    """Write `case`'s golden weights as a reference snapshot at `path`."""
    data = {}
    for key in networks:
        net = "D" if key == "D" else "G"
        kwargs = _easy(case.meta[f"{net}_kwargs"])
        data[key] = _module_tree(case.state(net), "Discriminator" if net == "D" else "Generator",
                                 kwargs, plain_leaf="identity" if key == "G" else None)
    data["augment_pipe"] = None
    data["training_set_kwargs"] = EasyDict(path="~/datasets/golden.zip", use_labels=False,
                                           resolution=case.meta["G_kwargs"]["img_resolution"])
    data.update(extra or {})
    with stand_in_modules(), open(path, "wb") as f:
        pickle.dump(data, f)
    return path
