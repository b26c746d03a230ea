"""Export a generator's `serving_default` as an ONNX model (through tf2onnx).

The ONNX graph has the same inputs and outputs as the SavedModel's
`serving_default` signature: `z`, `c` (only when c_dim > 0),
`truncation_psi` -> `images` (uint8), `images_float` (float32), with a
dynamic batch dimension. It is traced on TensorFlow; other backends export
through a TensorFlow subprocess (the weights are the same).
"""

import os

import keras

from keras_afgan.export.saved_model import serving_endpoints

DEFAULT_OPSET = 17


def _tf2onnx():
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs tf2onnx and onnx: pip install 'keras_afgan[onnx]' "
            "(or pip install tf2onnx onnx onnxruntime).") from error
    return tf2onnx


def _rename_values(graph, renames):
    """Rename graph inputs/outputs (and every use of them) to clean names."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)


def export_onnx(generator, path, overwrite=False, opset=DEFAULT_OPSET):
    """Write `generator`'s `serving_default` as the ONNX file `path`.

    Args:
        generator: a `keras_afgan.models.Generator` (any backend).
        path: the `.onnx` file to write.
        overwrite: replace an existing file.
        opset: ONNX opset version.

    Returns:
        `path`.
    """
    from keras_afgan.models.presets import is_generator

    if not is_generator(generator):
        raise TypeError(f"Expected a keras_afgan Generator or StyleGAN2Generator. "
                        f"Received: {type(generator).__name__}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"Expected the ONNX path to be a file. Received a directory: {path!r}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path!r} exists. Pass overwrite=True (--overwrite) to replace it.")
    if keras.config.backend() != "tensorflow":
        from keras_afgan.export.subprocess_export import export_under_backend

        return export_under_backend(generator, path, "onnx", "tensorflow", overwrite=overwrite)

    import tensorflow as tf

    tf2onnx = _tf2onnx()
    fn, specs = serving_endpoints(generator)["serving_default"]
    function = tf.function(fn, input_signature=specs, autograph=False)
    model, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)

    output_names = sorted(function.get_concrete_function().structured_outputs)
    renames = {value.name: value.name.split(":")[0] for value in model.graph.input}
    # tf2onnx names outputs after the graph tensors, in the order of the
    # function's flattened (key-sorted) outputs.
    renames.update({value.name: name for value, name in zip(model.graph.output, output_names)})
    _rename_values(model.graph, renames)
    uint8 = 2  # onnx.TensorProto.UINT8
    images_type = next(v for v in model.graph.output if v.name == "images").type.tensor_type
    if images_type.elem_type != uint8:
        raise RuntimeError("tf2onnx reordered the outputs: 'images' is not uint8.")
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    for key, value in (("z_dim", generator.z_dim), ("c_dim", generator.c_dim),
                       ("img_resolution", generator.img_resolution),
                       ("producer", "keras_afgan")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp_path, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return path
