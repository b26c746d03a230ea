"""Run an export under another Keras backend, in a subprocess.

The torch backend cannot trace a model to a TensorFlow graph, and ONNX goes
through tf2onnx, so those exports save the generator to a temporary `.keras`
file (weights are backend-neutral) and export it from a fresh interpreter
running TensorFlow:

    python -m keras_afgan.export.subprocess_export GENERATOR.keras OUT FORMAT [--overwrite]
"""

import os
import subprocess
import sys
import tempfile

FORMATS = ("saved_model", "onnx")


def export_under_backend(generator, path, export_format, backend, overwrite=False):
    """Export `generator` to `path` from a subprocess running Keras on `backend`."""
    if export_format not in FORMATS:
        raise ValueError(f"Expected export_format in {FORMATS}. Received: {export_format!r}")
    with tempfile.TemporaryDirectory(prefix="afgan-export-") as tmp:
        network = os.path.join(tmp, "generator.keras")
        generator.save(network)
        return export_file_under_backend(network, path, export_format, backend, overwrite)


def export_file_under_backend(network, path, export_format, backend, overwrite=False):
    """Export the generator file `network` to `path` under `backend`, in a subprocess."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, "-m", "keras_afgan.export.subprocess_export",
               os.fspath(network), os.fspath(path), export_format]
    if overwrite:
        command.append("--overwrite")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"Exporting {network} as {export_format} under KERAS_BACKEND={backend} failed "
            f"(exit {result.returncode}):\n{result.stderr[-4000:]}")
    return os.fspath(path)


def _main(argv):
    from keras_afgan.export import export_onnx
    from keras_afgan.export import export_saved_model
    from keras_afgan.models.saving import load_keras_file

    network, path, export_format = argv[:3]
    overwrite = "--overwrite" in argv[3:]
    generator = load_keras_file(network, "--network")
    # (export_saved_model / export_onnx check that it is a Generator.)
    export = export_saved_model if export_format == "saved_model" else export_onnx
    export(generator, path, overwrite=overwrite)


if __name__ == "__main__":
    _main(sys.argv[1:])
