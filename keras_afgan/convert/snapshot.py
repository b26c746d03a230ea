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
import math
import os
import pickle
import struct
import warnings

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

from keras_afgan.convert.reference import discriminator_from_reference
from keras_afgan.convert.reference import ADA_GENERATOR
from keras_afgan.convert.reference import STYLEGAN2_GENERATOR
from keras_afgan.convert.reference import STYLEGAN3_GENERATOR
from keras_afgan.convert.reference import generator_from_reference

NETWORKS = ("G", "D", "G_ema")

# Positional constructor arguments of the reference's networks, in order.
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                   "mapping_kwargs")
# stylegan2-ada-pytorch's `training.networks.Generator` also takes its
# synthesis arguments as one (seventh) argument.
_ADA_GENERATOR_ARGS = _GENERATOR_ARGS + ("synthesis_kwargs",)
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
    """Unpickles reference snapshots; refuses every global the format does not use.

    Tensors are rebuilt as views of their decoded storage, checked first: no
    tensor may have more elements than its storage or reach past its end (a
    stride-0 tensor of a few bytes would otherwise materialise gigabytes), and
    all tensors together at most `max_elements` (views of one storage
    referenced a thousand times would otherwise each be copied).

    Args:
        file: the open pickle.
        max_elements: the most tensor elements the file may hold in all; a
            real snapshot holds fewer than it has bytes.
    """

    def __init__(self, file, max_elements):
        super().__init__(file)
        self.max_elements = int(max_elements)
        self.elements = 0

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        del requires_grad, backward_hooks, metadata
        torch = _torch()
        if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
            raise pickle.UnpicklingError(
                f"Expected a tensor's storage. Received: {type(storage).__name__}")
        size, stride = tuple(size), tuple(stride)
        if (len(size) != len(stride) or not all(isinstance(v, int) and v >= 0
                                                 for v in size + stride + (storage_offset,))):
            raise pickle.UnpicklingError(
                f"Expected a tensor's size and stride as non-negative integers of one length. "
                f"Received: size={size}, stride={stride}, offset={storage_offset!r}")
        with warnings.catch_warnings():
            # torch.load gives the (deprecated) TypedStorage the format pickled.
            warnings.simplefilter("ignore", UserWarning)
            untyped = (storage.untyped() if isinstance(storage, torch.TypedStorage)
                       else storage)
            dtype = storage.dtype if isinstance(storage, torch.TypedStorage) else torch.uint8
        available = untyped.nbytes() // torch.empty((), dtype=dtype).element_size()
        numel = math.prod(size)
        extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if numel > available or (numel and extent > available):
            raise pickle.UnpicklingError(
                f"A tensor of size {list(size)} (stride {list(stride)}, offset "
                f"{storage_offset}) does not fit its storage of {available} elements")
        self.elements += numel
        if self.elements > self.max_elements:
            raise pickle.UnpicklingError(
                f"The tensors hold more than {self.max_elements} elements in all, more than the "
                "file's size allows (storages shared by many tensors?)")
        tensor = torch.empty((0,), dtype=dtype)
        tensor.set_(untyped, storage_offset, size, stride)
        return tensor

    def find_class(self, module, name):
        allowed = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"):
                _reconstruct_persistent_obj,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("dnnlib.util", "EasyDict"): _EasyDict,
            ("copyreg", "_reconstructor"): _module_record,
            ("builtins", "object"): object,
            # Protocols 2 and 3 (Python < 3.8's default) write sets (a torch
            # module's `_non_persistent_buffers_set`) as calls to `set`; 2 names
            # builtins `__builtin__`.
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("__builtin__", "set"): set,
            ("__builtin__", "frozenset"): frozenset,
            ("__builtin__", "object"): object,
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


# A pickle that fails to decode raises one of these (truncated data, wrong
# types in a reconstruction call, deep nesting, ...): all mean a bad file.
_DECODE_ERRORS = (EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
                  RecursionError, OverflowError, UnicodeDecodeError, RuntimeError,
                  struct.error, pickle.UnpicklingError)


def read_snapshot(path):
    """The snapshot's top-level dict, networks as `PersistentObject` records.

    Raises:
        pickle.UnpicklingError: the file names a global outside the format
            (nothing was run).
        ValueError: anything else wrong with the file (not a pickle, truncated,
            tensors that do not fit their storage or exceed its size, ...),
            naming the file.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(b"PK\x03\x04"):
            raise ValueError(
                f"{path} is a zip archive (a .keras file or a torch.save file?), not a "
                "reference snapshot pickle")
        f.seek(0)
        try:
            data = SnapshotUnpickler(f, max_elements=max(size, 1 << 20)).load()
        except pickle.UnpicklingError as error:
            if str(error).startswith("Refusing"):
                raise  # a global outside the format: the security refusal, as it is
            raise ValueError(f"{path} is not a valid reference snapshot: {error}") from None
        except _DECODE_ERRORS as error:
            raise ValueError(f"{path} is not a valid reference snapshot (truncated or "
                             f"corrupt): {type(error).__name__}: {error}") from None
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


# Bounds on the structures of a snapshot (real ones are far inside them): a
# few hostile bytes can describe self-references, deep nesting or, through
# shared references, billions of values.
MAX_NESTING = 64
MAX_ARGUMENT_VALUES = 100_000


def _module_state(obj, where):
    state = obj.state
    if not isinstance(state, dict):
        raise ValueError(f"Expected the state of {where} to be a dict. "
                         f"Received: {type(state).__name__}")
    return state


def _mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"Expected {where} to be a dict. Received: {type(value).__name__}")
    return value


def flatten_state(obj, prefix="", depth=0):
    """State-dict names -> numpy arrays, through `_parameters`, `_buffers`, `_modules`."""
    where = prefix[:-1] or obj.class_name
    if depth > MAX_NESTING:
        raise ValueError(f"Expected modules nested at most {MAX_NESTING} deep. "
                         f"Received: deeper at {where}")
    state = _module_state(obj, where)
    flat = {}
    for group in ("_parameters", "_buffers"):
        for name, value in _mapping(state.get(group), f"{where}.{group}").items():
            if value is not None:
                flat[prefix + str(name)] = _as_numpy(value, prefix + str(name))
    for name, child in _mapping(state.get("_modules"), f"{where}._modules").items():
        if child is None:
            continue
        if not isinstance(child, (PersistentObject, ModuleRecord)):
            raise ValueError(
                f"Expected a module at {prefix}{name}. Received: {type(child).__name__}")
        flat.update(flatten_state(child, f"{prefix}{name}.", depth + 1))
    return flat


def _plain(value, what="constructor arguments"):
    """EasyDicts and OrderedDicts as dicts, recursively (constructor arguments).

    Refuses self-references, nesting deeper than `MAX_NESTING` and more than
    `MAX_ARGUMENT_VALUES` values (shared references counted each time they
    are reached: what a copy, or JSON, would write).
    """
    count = 0

    def convert(value, depth, active):
        nonlocal count
        count += 1
        if count > MAX_ARGUMENT_VALUES:
            raise ValueError(f"Expected at most {MAX_ARGUMENT_VALUES} values in the {what}. "
                             "Received: more (shared references multiply them)")
        if depth > MAX_NESTING:
            raise ValueError(f"Expected the {what} nested at most {MAX_NESTING} deep. "
                             "Received: deeper")
        if not isinstance(value, (dict, list, tuple)):
            return value
        if id(value) in active:
            raise ValueError(f"Expected the {what} without self-references. Received: a "
                             f"{type(value).__name__} that contains itself")
        active.add(id(value))
        if isinstance(value, dict):
            out = {str(k): convert(v, depth + 1, active) for k, v in value.items()}
        else:
            out = type(value)(convert(v, depth + 1, active) for v in value)
        active.discard(id(value))
        return out

    return convert(value, 0, set())


def constructor_kwargs(obj, positional_names):
    """The network's constructor arguments from `_init_args` and `_init_kwargs`."""
    state = _module_state(obj, obj.class_name)
    what = f"constructor arguments of {obj.class_name}"
    args = _plain(list(state.get("_init_args") or ()), what)
    kwargs = _plain(_mapping(state.get("_init_kwargs"), f"{obj.class_name}._init_kwargs"), what)
    if len(args) > len(positional_names):
        raise ValueError(
            f"Expected at most {len(positional_names)} positional arguments for "
            f"{obj.class_name}. Received: {len(args)}")
    for name, value in zip(positional_names, args):
        kwargs[name] = value
    return kwargs


def _generator_class(obj, key):
    """`(reference class name, constructor kwargs)` of generator `obj`.

    A pickle names a class without its module; the structure tells them
    apart: StyleGAN3's synthesis network has an `input` layer, StyleGAN2's
    has blocks `b4, b8, ...`. stylegan2-ada-pytorch's generator (module
    `training.networks`) takes its synthesis arguments in `synthesis_kwargs`;
    the StyleGAN3 repository's `networks_stylegan2` takes them flat.
    """
    if obj.class_name != "Generator":
        raise ValueError(f"Expected {key} to be a Generator. Received: {obj.class_name}")
    modules = _mapping(_module_state(obj, key).get("_modules"), f"{key}._modules")
    synthesis = modules.get("synthesis")
    children = set()
    if isinstance(synthesis, (PersistentObject, ModuleRecord)):
        children = set(_mapping(_module_state(synthesis, f"{key}.synthesis").get("_modules"),
                                f"{key}.synthesis._modules"))
    if "input" in children:
        return STYLEGAN3_GENERATOR, constructor_kwargs(obj, _GENERATOR_ARGS)
    if "b4" in children:
        kwargs = constructor_kwargs(obj, _ADA_GENERATOR_ARGS)
        return (ADA_GENERATOR if "synthesis_kwargs" in kwargs else STYLEGAN2_GENERATOR), kwargs
    raise ValueError(
        f"{key} is an unknown generator (synthesis children {sorted(map(str, children))[:6]}): "
        "expected StyleGAN3's (an `input` layer) or StyleGAN2's (blocks b4, b8, ...).")


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
    p = _mapping(_module_state(obj, "augment_pipe").get("_buffers"),
                 "augment_pipe._buffers").get("p")
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
    `block_kwargs`, `--fp32`'s `num_fp16_res`/`conv_clamp`, ...), NVIDIA's
    published StyleGAN3 models, and StyleGAN2 generators: the StyleGAN3
    repository's `--cfg=stylegan2` snapshots and stylegan2-ada-pytorch's
    (NVIDIA's published ffhq, metfaces, afhq, brecahad, cifar10 models).
    Any constructor argument keras_afgan does not know is refused with its
    name.

    Args:
        path: the `.pkl` file.

    Returns:
        A dict with `G`, `D`, `G_ema` (those present in the file: published
        models may hold only some) as keras_afgan `Generator` (or
        `StyleGAN2Generator`) / `Discriminator`; `augment` (`{"kwargs", "p"}`, see
        `read_augment_pipe`) when the run trained with augmentation; and
        `training_set_kwargs` when the file has it.
    """
    data = read_snapshot(path)
    try:
        return _models(data)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from error


def _models(data):
    found = [key for key in NETWORKS if data.get(key) is not None]
    if not found:
        raise ValueError(
            f"Expected networks G, D or G_ema. Received keys: {sorted(map(str, data))[:20]}")
    # Every structure is read and checked before anything is built.
    networks = {}
    for key in found:
        obj = data[key]
        if not isinstance(obj, PersistentObject):
            raise ValueError(
                f"Expected {key} to be a torch_utils.persistence network. Received: "
                f"{type(obj).__name__}")
        if key in ("G", "G_ema"):
            class_name, kwargs = _generator_class(obj, key)
            networks[key] = (generator_from_reference, flatten_state(obj),
                             dict(kwargs, class_name=class_name))
        else:
            if obj.class_name != "Discriminator":
                raise ValueError(f"Expected D to be a Discriminator. Received: {obj.class_name}")
            networks[key] = (discriminator_from_reference, flatten_state(obj),
                             constructor_kwargs(obj, _DISCRIMINATOR_ARGS))
    result = {}
    if data.get("augment_pipe") is not None:
        result["augment"] = read_augment_pipe(data["augment_pipe"])
    if data.get("training_set_kwargs") is not None:
        result["training_set_kwargs"] = _plain(data["training_set_kwargs"], "training_set_kwargs")
    for key, (build, state, kwargs) in networks.items():
        result[key] = build(state, **kwargs)
    return result
