"""Export a generator as a SavedModel that TF Serving serves.

Three signatures, written once in keras.ops and traced by Keras's
`ExportArchive` on TensorFlow (a plain TF graph) or JAX (jax2tf, native
serialization for CPU and CUDA). The torch backend cannot trace to TF, so a
torch generator is saved to a `.keras` file and exported by a TensorFlow
subprocess: the weights are the same on every backend.

- `serving_default(z [N, z_dim], c [N, c_dim] (only when c_dim > 0),
  truncation_psi [N])` -> `images` uint8 `[N, R, R, C]` (`img * 127.5 + 128`,
  clipped, truncated), `images_float` float32 `[N, R, R, C]` (raw output).
- `mapping(z, c, truncation_psi)` -> `ws` float32 `[N, num_ws, w_dim]`.
- `synthesis(ws [N, num_ws, w_dim], translate [N, 2], rotate [N])` ->
  `images`, `images_float`. `translate` (fractions of the image) and `rotate`
  (degrees) move each sample's content, on top of the generator's stored input
  transform; send zeros for the plain synthesis. A StyleGAN2 generator has
  no input transform: its `synthesis` takes `ws` alone.

A StyleGAN2 generator's per-pixel noise is its stored `noise_const`
(`noise_mode="const"`): the served images are a function of the inputs.
"""

import os
import re
import shutil
import tempfile

import keras
from keras import ops

from keras_afgan.images import to_uint8
from keras_afgan.models.transforms import content_transform_matrices

SIGNATURE_NAMES = ("serving_default", "mapping", "synthesis")
TRACING_BACKENDS = ("tensorflow", "jax")
DEFAULT_JAX_PLATFORMS = ("cpu", "cuda")


def _image_outputs(images):
    images = ops.cast(images, "float32")
    return {"images": to_uint8(images), "images_float": images}


def _tensor_spec(shape, name):
    import tensorflow as tf

    return tf.TensorSpec(shape=shape, dtype=tf.float32, name=name)


def _shape_text(shape):
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"


def with_input_checks(fn, specs):
    """A `tf.function` over `specs` that checks each input's shape, then calls `fn`.

    The checks are graph ops, so they run wherever the SavedModel runs (TF
    Serving included) and fail with a message naming the input, the
    expected shape and the received one. `N` is the first input's batch size;
    N = 0 answers empty outputs. (Dtypes are checked by TensorFlow itself when
    the signature is called.)
    """
    import inspect

    import tensorflow as tf

    names = [spec.name for spec in specs]

    def checked(*args):
        # The rank is counted from the runtime shape: `tf.rank` and `tf.size`
        # would fold to the signature's static rank and check nothing.
        rank_checks = [
            tf.debugging.Assert(
                tf.equal(tf.math.count_nonzero(tf.shape(x) >= 0, dtype=tf.int32), len(spec.shape)),
                [f"Expected input {name} of shape {_shape_text(spec.shape)} "
                 f"(rank {len(spec.shape)}). Received shape:", tf.shape(x)])
            for name, spec, x in zip(names, specs, args)
        ]
        with tf.control_dependencies(rank_checks):
            batch = tf.shape(args[0])[0]
            shape_checks = []
            for name, spec, x in zip(names, specs, args):
                expected = tf.stack([batch if d is None else tf.constant(d) for d in spec.shape])
                shape_checks.append(tf.debugging.Assert(
                    tf.reduce_all(tf.equal(tf.shape(x), expected)),
                    [f"Expected input {name} of shape {_shape_text(spec.shape)}, N being "
                     f"the batch size of {names[0]} (", batch, "). Received shape:",
                     tf.shape(x)]))
        with tf.control_dependencies(shape_checks):
            args = [tf.identity(x) for x in args]
        empty = _empty_outputs(fn)
        if empty is None:
            return fn(*args)
        # N = 0 answers empty outputs without running the generator (jax2tf's
        # shape-polymorphic module requires a batch of at least 1).
        return tf.cond(batch > 0, lambda: fn(*args), empty)

    checked.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    return tf.function(checked, input_signature=specs, autograph=False)


def _empty_outputs(fn):
    """A function making `fn`'s outputs for a batch of 0, or None where a
    concrete function's outputs have unknown dimensions past the batch."""
    import tensorflow as tf

    outputs = getattr(fn, "structured_outputs", None)
    leaves = tf.nest.flatten(outputs)
    if not leaves or not all(isinstance(x, (tf.Tensor, tf.TensorSpec)) and x.shape.rank
                             and None not in x.shape.as_list()[1:] for x in leaves):
        return None
    return lambda: tf.nest.map_structure(
        lambda x: tf.zeros([0] + x.shape.as_list()[1:], x.dtype), outputs)


def serving_endpoints(generator):
    """The signatures of `generator`: name -> (function, [tf.TensorSpec]).

    The functions use keras.ops only; their argument names are the
    signature's input names.
    """
    G = generator
    z_spec = _tensor_spec((None, G.z_dim), "z")
    c_spec = _tensor_spec((None, G.c_dim), "c")
    psi_spec = _tensor_spec((None,), "truncation_psi")

    if G.c_dim > 0:
        def mapping(z, c, truncation_psi):
            return {"ws": ops.cast(G.mapping(z, c, truncation_psi=truncation_psi), "float32")}

        def serving_default(z, c, truncation_psi):
            return _image_outputs(G.synthesis(mapping(z, c, truncation_psi)["ws"],
                                              noise_mode="const"))

        latent_specs = [z_spec, c_spec, psi_spec]
    else:
        def mapping(z, truncation_psi):
            return {"ws": ops.cast(G.mapping(z, None, truncation_psi=truncation_psi), "float32")}

        def serving_default(z, truncation_psi):
            return _image_outputs(G.synthesis(mapping(z, truncation_psi)["ws"],
                                              noise_mode="const"))

        latent_specs = [z_spec, psi_spec]

    ws_spec = _tensor_spec((None, G.num_ws, G.w_dim), "ws")
    if G.has_input_transform:
        def synthesis(ws, translate, rotate):
            transforms = content_transform_matrices(translate, rotate)
            return _image_outputs(G.synthesis(ws, transform=transforms, noise_mode="const"))

        synthesis_specs = [ws_spec, _tensor_spec((None, 2), "translate"),
                           _tensor_spec((None,), "rotate")]
    else:
        def synthesis(ws):
            return _image_outputs(G.synthesis(ws, noise_mode="const"))

        synthesis_specs = [ws_spec]
    return {
        "serving_default": (serving_default, latent_specs),
        "mapping": (mapping, latent_specs),
        "synthesis": (synthesis, synthesis_specs),
    }


def signature_summary(generator):
    """One line per signature: `name: inputs -> outputs` with dtypes and shapes."""
    r, ch = generator.img_resolution, generator.img_channels
    images = f"images uint8 [N, {r}, {r}, {ch}], images_float float32 [N, {r}, {r}, {ch}]"
    lines = []
    for name, (_, specs) in serving_endpoints(generator).items():
        inputs = ", ".join(f"{spec.name} float32 {_shape_text(spec.shape)}" for spec in specs)
        outputs = (f"ws float32 [N, {generator.num_ws}, {generator.w_dim}]"
                   if name == "mapping" else images)
        lines.append(f"{name}: {inputs} -> {outputs}")
    return lines


def check_version_dir(path):
    """TF Serving loads integer version directories only: refuse any other export path."""
    version = os.path.basename(os.path.normpath(os.fspath(path)))
    if not re.fullmatch(r"[0-9]+", version):  # ASCII digits ("²".isdigit() is True)
        raise ValueError(
            "Expected the export directory (--outdir) to end in an integer version directory, "
            "as TF Serving needs (MODEL_BASE/NAME/VERSION, e.g. exported/afgan/1). "
            f"Received: {os.fspath(path)!r}")
    return path


def prepare_outdir(path, overwrite):
    """Refuse to replace an existing, non-empty export unless `overwrite`."""
    path = os.fspath(path)
    if os.path.isfile(path):
        raise ValueError(f"Expected the export path to be a directory. Received a file: {path!r}")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(
            f"Export directory {path!r} exists and is not empty. Pass overwrite=True "
            "(--overwrite) to replace it, or export to a new version directory.")
    return path


def publish_dir(tmp_path, path):
    """Move a finished export into place; TF Serving never sees a half-written version.

    An export being replaced is moved aside first and deleted only once the
    new one is in place.
    """
    old = None
    if os.path.isdir(path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-",
                               dir=os.path.dirname(os.path.abspath(path)))
        os.replace(path, os.path.join(old, "export"))
    os.replace(tmp_path, path)
    if old is not None:
        shutil.rmtree(old)


def staging_dir(path):
    """A sibling temporary directory (non-numeric name: TF Serving ignores it)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)


def export_saved_model(generator, path, overwrite=False, jax_platforms=DEFAULT_JAX_PLATFORMS):
    """Write `generator` as a SavedModel with the three serving signatures.

    For TF Serving, `path` is `MODELS_DIR/NAME/VERSION` (VERSION an integer).
    The export is written beside `path` and moved into place when complete.

    Args:
        generator: a `keras_afgan.models.Generator` (any backend).
        path: output directory.
        overwrite: replace an existing, non-empty `path`.
        jax_platforms: on JAX, the platforms the serialized StableHLO runs on.

    Returns:
        `path`.
    """
    from keras_afgan.models.presets import is_generator

    if not is_generator(generator):
        raise TypeError(f"Expected a keras_afgan Generator or StyleGAN2Generator. "
                        f"Received: {type(generator).__name__}")
    path = prepare_outdir(path, overwrite)
    backend = keras.config.backend()
    if backend not in TRACING_BACKENDS:
        from keras_afgan.export.subprocess_export import export_under_backend

        return export_under_backend(generator, path, "saved_model", "tensorflow",
                                    overwrite=overwrite)

    # The generator traced by Keras (a TF graph, or jax2tf's XlaCallModule),
    # wrapped in TF functions that check the inputs; only the wrappers are
    # the archive's endpoints (signatures).
    traced = keras.export.ExportArchive()
    traced.track(generator)
    archive = keras.export.ExportArchive()
    for name, (fn, specs) in serving_endpoints(generator).items():
        kwargs = {}
        if backend == "jax":
            # No gradient: a served generator is never differentiated, and tracing
            # the VJP of every endpoint took two thirds of the export's time.
            kwargs["jax2tf_kwargs"] = {"native_serialization_platforms": tuple(jax_platforms),
                                       "with_gradient": False}
        inner = traced.add_endpoint(name, fn, input_signature=specs, **kwargs)
        # The wrapper calls the generator's one trace: TF retraces a function
        # when saving (the save options are part of its cache key) and Keras
        # traces outside that context, so calling `inner` itself traced the
        # whole generator twice.
        outer = with_input_checks(inner.get_concrete_function(), specs)
        outer.get_concrete_function()
        archive.add_endpoint(name, outer)
    tmp_path = staging_dir(path)
    try:
        archive.write_out(tmp_path, verbose=False)
        publish_dir(tmp_path, path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    return path
