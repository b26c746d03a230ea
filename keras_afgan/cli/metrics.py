"""afgan-metrics: equivariance, FID, KID, precision/recall of a generator.

    afgan-metrics --network=runs/tiny/generator.keras --metrics=eqt50k_int,eqr50k --num=200
    afgan-metrics --network=G.keras --metrics=fid50k_full,kid50k_full --data=builtin \\
        --inception=inception_v3_notop.h5 --num=1000
    afgan-metrics --network=G.keras --metrics=pr50k3_full --data=ffhq256.zip \\
        --vgg16=vgg16_weights_tf_dim_ordering_tf_kernels.h5

`--num` samples per metric (default 50000, the metrics' nominal count).
FID/KID/PR need `--data` (streamed: every image is a real for FID/KID, the
first `--num` for PR) and local weights files: InceptionV3 for FID/KID
(`--inception`), VGG16 for PR (`--vgg16`); nothing is downloaded. Real
features are cached under `$KERAS_AFGAN_CACHE/metrics` (default
`~/.cache/keras_afgan/metrics`), keyed by the data's files and the weights
file: a second run on the same data does not read it.
Results print one per line and, with `--out`, append one JSON line.
"""

import json
import time

from absl import flags

from keras_afgan.cli.common import load_generator
from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_string("metrics", "eqt50k_int,eqt50k_frac,eqr50k", "Comma-separated metric names.")
flags.DEFINE_string("data", None, "Dataset for FID/KID/PR (see afgan-train --data).")
flags.DEFINE_integer("num", 50000, "Samples per metric.")
flags.DEFINE_string("inception", None,
                    "InceptionV3 (no top) weights file; default $KERAS_AFGAN_INCEPTION.")
flags.DEFINE_string("vgg16", None,
                    "VGG16 (with top) weights for PR; default $KERAS_AFGAN_VGG16.")
flags.DEFINE_string("cache-dir", None, "Cache of real-image features (default "
                    "$KERAS_AFGAN_CACHE/metrics or ~/.cache/keras_afgan/metrics); 'none' disables.")
flags.DEFINE_integer("batch", 16, "Generator batch for FID/KID/PR.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("out", None, "Append the results as one JSON line to this file.")


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.metrics.registry import FEATURE_METRICS
    from keras_afgan.metrics.registry import compute_metrics
    from keras_afgan.metrics.registry import parse_metrics

    names = parse_metrics(_FLAGS.metrics)
    if not names:
        raise ValueError(f"Expected at least one metric. Received: {_FLAGS.metrics!r}")
    if _FLAGS.num < 1:
        raise ValueError(f"Expected --num >= 1. Received: {_FLAGS.num}")
    G = load_generator(_FLAGS.network)
    cache_dir = _FLAGS["cache-dir"].value
    dataset = None
    if _FLAGS.data:
        from keras_afgan.data.sources import open_images

        dataset = open_images(_FLAGS.data, resolution=G.img_resolution,
                              use_labels=G.c_dim > 0, channels=G.img_channels)
    elif any(name in FEATURE_METRICS for name in names):
        raise ValueError(f"Expected --data for {[n for n in names if n in FEATURE_METRICS]}. "
                         "Received: none")
    results = compute_metrics(G, names, num=_FLAGS.num, dataset=dataset,
                              inception=_FLAGS.inception, vgg16=_FLAGS.vgg16,
                              batch_size=_FLAGS.batch, seed=_FLAGS.seed, verbose=True,
                              cache_dir=False if cache_dir == "none" else cache_dir)
    if _FLAGS.out:
        record = {"network": _FLAGS.network, "num": _FLAGS.num, "seed": _FLAGS.seed,
                  "data": _FLAGS.data, "results": results, "timestamp": time.time()}
        with open(_FLAGS.out, "a") as f:
            f.write(json.dumps(record) + "\n")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
