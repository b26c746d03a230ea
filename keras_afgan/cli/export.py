"""afgan-export: a generator as a TF Serving SavedModel or an ONNX model.

    afgan-export --network=runs/tiny/generator.keras --outdir=exported/afgan/1
    afgan-export --network=G.keras --outdir=exported/afgan_onnx/1 --format=onnx

`--network` takes a generator written by training (on any backend) or by
`Generator.save`, or a training checkpoint (its G-EMA is exported).
SavedModels are traced on TensorFlow or JAX (whichever KERAS_BACKEND names;
under torch the export re-runs itself on TensorFlow, the weights being the
same). For TF Serving, `--outdir` is `MODEL_BASE/NAME/VERSION` with an
integer VERSION; ONNX writes `OUTDIR/model.onnx` (Triton's layout).
"""

import os
import subprocess
import sys

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool
from keras_afgan.export.saved_model import TRACING_BACKENDS
from keras_afgan.export.saved_model import check_version_dir

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_string("outdir", None, "Output directory: MODEL_BASE/NAME/VERSION.", required=True)
flags.DEFINE_enum("format", "saved_model", ["saved_model", "onnx"], "What to write.")
flags.DEFINE_bool("overwrite", False, "Replace an existing export in --outdir.")
flags.DEFINE_integer("opset", 17, "ONNX opset (--format=onnx).")

ONNX_FILENAME = "model.onnx"


def tracing_backend(current, export_format):
    """The backend that traces the export: the current one where it can."""
    if export_format == "onnx":
        return "tensorflow"
    return current if current in TRACING_BACKENDS else "tensorflow"


def serving_instructions(outdir):
    """How to serve the export with the tensorflow/serving Docker image."""
    version_dir = os.path.abspath(outdir)
    model_dir = os.path.dirname(version_dir)
    name = os.path.basename(model_dir)
    return "\n".join([
        "Serve it with TF Serving (REST on 8501, gRPC on 8500):",
        f"  docker run --rm -p 8501:8501 -p 8500:8500 -v {model_dir}:/models/{name} "
        f"-e MODEL_NAME={name} tensorflow/serving",
        f"  curl -X POST localhost:8501/v1/models/{name}:predict -d "
        "'{\"signature_name\": \"serving_default\", \"inputs\": {...}}'",
        "or with examples/serving_client.py (gRPC).",
    ])


def main(argv):
    del argv
    prepare_process()
    import keras

    from keras_afgan.cli.common import load_generator
    from keras_afgan.export import export_onnx
    from keras_afgan.export import export_saved_model
    from keras_afgan.export.saved_model import signature_summary

    export_format = _FLAGS.format
    outdir = _FLAGS.outdir
    if export_format == "saved_model":
        check_version_dir(outdir)
    if not os.path.exists(_FLAGS.network):
        raise ValueError(f"Expected --network to name a .keras file. Received: {_FLAGS.network!r}")
    backend = tracing_backend(keras.config.backend(), export_format)
    if backend != keras.config.backend():
        print(f"Exporting under KERAS_BACKEND={backend} (the weights are backend-neutral).",
              flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend)
        code = subprocess.call([sys.executable, "-m", "keras_afgan.cli.export", *sys.argv[1:]],
                               env=env)
        sys.exit(code)

    G = load_generator(_FLAGS.network)
    if export_format == "onnx":
        path = export_onnx(G, os.path.join(outdir, ONNX_FILENAME), overwrite=_FLAGS.overwrite,
                           opset=_FLAGS.opset)
        print(f"Wrote {path} (inputs and outputs of serving_default, traced on {backend}).")
        return
    export_saved_model(G, outdir, overwrite=_FLAGS.overwrite)
    print(f"Wrote SavedModel {outdir} (traced on {backend}) with signatures:")
    for line in signature_summary(G):
        print(f"  {line}")
    print(serving_instructions(outdir))


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
