"""Read the reference's snapshot pickles without running its code.

A snapshot (`network-snapshot-*.pkl`, or a published pretrained model such as
`stylegan3-t-ffhq-1024x1024.pkl`) is a plain `pickle.dump` of a dict with
`G`, `D`, `G_ema`, `augment_pipe`, `training_set_kwargs`, .... Each network
is stored as a call to `torch_utils.persistence._reconstruct_persistent_obj`
with one `meta` dict: `type='class'`, `version`, `module_src` (the source of
the module that defined the class), `class_name` and `state` (the torch
module's `__dict__`: `_parameters`, `_buffers`, `_modules`, the constructor
arguments `_init_args` / `_init_kwargs`, plain attributes). Unpickling it
normally would import the reference's `torch_utils`, then execute
`module_src`: a licence problem and arbitrary code execution.

`load_reference_pickle` unpickles with `SnapshotUnpickler`, whose
`find_class` answers only the globals the format needs, each with a
stand-in of this module: the persistence call gives a `PersistentObject`
record (its `module_src` is kept as text, never run), tensors are rebuilt
through `torch.load(..., weights_only=True)`, `dnnlib.util.EasyDict` is a
dict, plain `torch.nn` modules are records of their `__dict__`. Anything
else (`os.system`, `builtins.eval`, any other class) raises
`pickle.UnpicklingError` naming it, before it could be called.
"""

import collections
import io
import pickle

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

from keras_afgan.convert.reference import discriminator_from_reference
from keras_afgan.convert.reference import generator_from_reference

NETWORKS = ("G", "D", "G_ema")

# Positional constructor arguments of the reference's networks, in order.
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                   "mapping_kwargs")
_DISCRIMINATOR_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture",
                       "channel_base", "channel_max", "num_fp16_res", "conv_clamp", "cmap_dim",
                       "block_kwargs", "mapping_kwargs", "epilogue_kwargs")
# The reference's `training.augment.AugmentPipe` arguments, in order.
AUGMENT_ARGS = ("xflip", "rotate90", "xint", "xint_max", "scale", "rotate", "aniso", "xfrac",
                "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness", "contrast",
                "lumaflip", "hue", "saturation", "brightness_std", "contrast_std", "hue_max",
                "saturation_std", "imgfilter", "imgfilter_bands", "imgfilter_std", "noise",
                "cutout", "noise_std", "cutout_size")


class PersistentObject:
    """A network of the snapshot, as data: `class_name`, `module_src`, `state`."""

    def __init__(self, meta):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise pickle.UnpicklingError(
                "Expected a persistent object with meta type 'class'. Received: "
                f"{meta.get('type') if isinstance(meta, dict) else type(meta).__name__!r}")
        self.class_name = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.module_src = meta.get("module_src") or ""
        self.state = meta.get("state") or {}

    def __repr__(self):
        return f"PersistentObject({self.class_name})"


class ModuleRecord:
    """A plain `torch.nn` module of the snapshot: its class name and `__dict__`.

    `find_class` answers a `torch.nn.modules.*` class with a subclass of this
    (pickle then creates it without `__init__` and sets its state), so no
    torch module class is imported or instantiated.
    """

    class_name = "torch.nn.Module"
    state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class _EasyDict(dict):
    """Stands in for `dnnlib.util.EasyDict` (a dict with attribute access)."""


def _reconstruct_persistent_obj(meta):
    return PersistentObject(meta)


def _torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "Reading a reference snapshot needs PyTorch to decode its tensors: "
            "pip install torch (the CPU build is enough; KERAS_BACKEND may be any).") from error
    return torch


def _load_storage_from_bytes(data):
    # The storage is itself a torch.save() archive: read it with torch's own
    # restricted loader (tensors and storages only).
    return _torch().load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    del requires_grad, backward_hooks, metadata
    torch = _torch()
    tensor = torch.empty((0,), dtype=storage.dtype)
    tensor.set_(storage.untyped_storage() if hasattr(storage, "untyped_storage") else storage,
                storage_offset, size, stride)
    return tensor


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    del requires_grad, backward_hooks, state
    return data


def _module_record(cls, base=object, state=None):
    # copyreg._reconstructor(cls, object, None): how protocols 0 and 1 store
    # plain objects; only the module records of find_class are created.
    del base, state
    if not (isinstance(cls, type) and issubclass(cls, ModuleRecord)):
        raise pickle.UnpicklingError(f"Refusing to reconstruct {cls!r} from a reference snapshot")
    return cls.__new__(cls)


class SnapshotUnpickler(pickle.Unpickler):
    """Unpickles reference snapshots; refuses every global the format does not use."""

    def find_class(self, module, name):
        allowed = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"):
                _reconstruct_persistent_obj,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("dnnlib.util", "EasyDict"): _EasyDict,
            ("copyreg", "_reconstructor"): _module_record,
            ("builtins", "object"): object,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
                "scalar", "_reconstruct"):
            return getattr(_multiarray, name)
        if module == "numpy" and name in ("dtype", "ndarray"):
            return getattr(np, name)
        if module.startswith("torch.nn.modules.") and name.isidentifier():
            return type(name, (ModuleRecord,), {"class_name": f"{module}.{name}"})
        raise pickle.UnpicklingError(
            f"Refusing to load global {module}.{name} from a reference snapshot: only "
            "torch tensors, torch_utils.persistence networks, dnnlib EasyDicts and numpy "
            "scalars are allowed (nothing in the file is imported or executed).")


def read_snapshot(path):
    """The snapshot's top-level dict, networks as `PersistentObject` records."""
    with open(path, "rb") as f:
        data = SnapshotUnpickler(f).load()
    if not isinstance(data, dict):
        raise ValueError(
            f"Expected a reference snapshot (a pickled dict with G, D, G_ema) in {path}. "
            f"Received: {type(data).__name__}")
    return data


def _as_numpy(value, name):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32).cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"Expected a tensor for {name}. Received: {type(value).__name__}")


def flatten_state(obj, prefix=""):
    """State-dict names -> numpy arrays, through `_parameters`, `_buffers`, `_modules`."""
    state = obj.state
    flat = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None:
                flat[prefix + name] = _as_numpy(value, prefix + name)
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, (PersistentObject, ModuleRecord)):
            raise ValueError(
                f"Expected a module at {prefix + name}. Received: {type(child).__name__}")
        flat.update(flatten_state(child, prefix + name + "."))
    return flat


def _plain(value):
    """EasyDicts and OrderedDicts as dicts, recursively (constructor arguments)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def constructor_kwargs(obj, positional_names):
    """The network's constructor arguments from `_init_args` and `_init_kwargs`."""
    args = list(obj.state.get("_init_args") or ())
    kwargs = _plain(dict(obj.state.get("_init_kwargs") or {}))
    if len(args) > len(positional_names):
        raise ValueError(
            f"Expected at most {len(positional_names)} positional arguments for "
            f"{obj.class_name}. Received: {len(args)}")
    for name, value in zip(positional_names, args):
        kwargs[name] = _plain(value)
    return kwargs


def _check_stylegan3_generator(obj, key):
    if obj.class_name != "Generator":
        raise ValueError(f"Expected {key} to be a Generator. Received: {obj.class_name}")
    modules = obj.state.get("_modules") or {}
    synthesis = modules.get("synthesis")
    children = set((synthesis.state.get("_modules") or {}) if synthesis is not None else {})
    if "input" not in children:
        kind = "StyleGAN2" if any(name.startswith("b") and name[1:].isdigit()
                                  for name in children) else "an unknown"
        raise ValueError(
            f"{key} is {kind} generator (synthesis blocks {sorted(children)[:6]}): only "
            "StyleGAN3 (Alias-Free GAN, configs T and R) snapshots are supported.")


def read_augment_pipe(obj):
    """The settings and probability of a snapshot's `augment_pipe`.

    Returns `{"kwargs": {...}, "p": float}`: the constructor arguments the
    pipe was built with (as `AugmentPipe(**kwargs)` takes them) and its
    buffer `p`, the augmentation probability when the snapshot was taken.
    """
    if not isinstance(obj, PersistentObject) or obj.class_name != "AugmentPipe":
        raise ValueError(
            "Expected augment_pipe to be the reference's AugmentPipe (or None). Received: "
            f"{getattr(obj, 'class_name', type(obj).__name__)}")
    kwargs = constructor_kwargs(obj, AUGMENT_ARGS)
    unknown = set(kwargs) - set(AUGMENT_ARGS)
    if unknown:
        raise ValueError(f"Unexpected augment_pipe arguments: {sorted(unknown)}")
    p = (obj.state.get("_buffers") or {}).get("p")
    if p is None:
        raise ValueError("Expected augment_pipe to hold its probability buffer 'p'. "
                         "Received: no 'p' buffer")
    p = _as_numpy(p, "augment_pipe.p")
    if p.size != 1 or not np.isfinite(p).all() or not 0 <= float(p.reshape(())) <= 1:
        raise ValueError(f"Expected augment_pipe.p to be one number in [0, 1]. Received: {p!r}")
    return {"kwargs": kwargs, "p": float(p.reshape(()))}


def load_reference_pickle(path):
    """keras_afgan models from a reference snapshot pickle, without its code.

    Reads what the reference's training loop writes (`network-snapshot-*.pkl`,
    with the constructor arguments its `train.py` passes: Freeze-D's
    `block_kwargs`, `--fp32`'s `num_fp16_res`/`conv_clamp`, ...) and NVIDIA's
    published StyleGAN3 models. Any constructor argument keras_afgan does not
    know is refused with its name.

    Args:
        path: the `.pkl` file.

    Returns:
        A dict with `G`, `D`, `G_ema` (those present in the file: published
        models may hold only some) as keras_afgan `Generator` /
        `Discriminator`; `augment` (`{"kwargs", "p"}`, see
        `read_augment_pipe`) when the run trained with augmentation; and
        `training_set_kwargs` when the file has it.
    """
    data = read_snapshot(path)
    found = [key for key in NETWORKS if data.get(key) is not None]
    if not found:
        raise ValueError(
            f"Expected networks G, D or G_ema in {path}. Received keys: {sorted(map(str, data))}")
    result = {}
    for key in found:
        obj = data[key]
        if not isinstance(obj, PersistentObject):
            raise ValueError(
                f"Expected {key} to be a torch_utils.persistence network. Received: "
                f"{type(obj).__name__}")
        if key in ("G", "G_ema"):
            _check_stylegan3_generator(obj, key)
            result[key] = generator_from_reference(
                flatten_state(obj), **constructor_kwargs(obj, _GENERATOR_ARGS))
        else:
            if obj.class_name != "Discriminator":
                raise ValueError(f"Expected D to be a Discriminator. Received: {obj.class_name}")
            result[key] = discriminator_from_reference(
                flatten_state(obj), **constructor_kwargs(obj, _DISCRIMINATOR_ARGS))
    if data.get("augment_pipe") is not None:
        result["augment"] = read_augment_pipe(data["augment_pipe"])
    if data.get("training_set_kwargs") is not None:
        result["training_set_kwargs"] = _plain(data["training_set_kwargs"])
    return result
