"""afgan-convert: a reference snapshot pickle to keras_afgan models.

    afgan-convert --source=stylegan3-t-ffhq-1024x1024.pkl --outdir=models/ffhq
    afgan-export --network=models/ffhq/G_ema.keras --outdir=exported/ffhq/1

Writes `G_ema.keras`, `G.keras` and `D.keras` (those the pickle holds),
`augment.json` (the augmentation settings and probability) and
`training_set_kwargs.json` when present. `afgan-train --resume=DIR`
fine-tunes from the directory. The pickle is read without importing
or running any of its code (see keras_afgan.convert.snapshot); PyTorch is
needed to decode its tensors. The .keras files load on every backend.
"""

import json
import os

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "Reference snapshot (.pkl).", required=True)
flags.DEFINE_string("outdir", None, "Directory for G_ema.keras, G.keras, D.keras.", required=True)
flags.DEFINE_bool("overwrite", False, "Replace existing .keras files in --outdir.")


def convert(source, outdir, overwrite=False):
    """Convert `source`; returns the paths written."""
    from keras_afgan.convert.snapshot import NETWORKS
    from keras_afgan.convert.snapshot import load_reference_pickle

    if not os.path.isfile(source):
        raise FileNotFoundError(
            f"Expected --source to be a snapshot .pkl file. Received: {source!r}")
    models = load_reference_pickle(source)
    os.makedirs(outdir, exist_ok=True)
    targets = {key: os.path.join(outdir, f"{key}.keras") for key in NETWORKS if key in models}
    existing = [path for path in targets.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing} exist; pass --overwrite to replace them.")
    written = []
    for key in ("G_ema", "G", "D"):
        if key in targets:
            partial = targets[key] + ".partial.keras"
            models[key].save(partial)
            os.replace(partial, targets[key])
            written.append(targets[key])
    for key in ("augment", "training_set_kwargs"):
        if key in models:
            path = os.path.join(outdir, f"{key}.json")
            with open(path, "w") as f:
                json.dump(models[key], f, indent=2, sort_keys=True, default=str)
            written.append(path)
    return written


def main(argv):
    del argv
    prepare_process()
    for path in convert(_FLAGS.source, _FLAGS.outdir, _FLAGS.overwrite):
        print(f"wrote {path}")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
