"""afgan-study: the paper's equivariance study on one dataset.

    afgan-study --outdir=runs/study --preset=tiny --kimg=20 \\
        --configs=stylegan2,config-b,stylegan3-t,stylegan3-t:noise_inputs=1,stylegan3-r

Trains each configuration (a `--cfg` preset with optional `:setting=value`
ablation overrides, see keras_afgan.study) for the same kimg, measures
EQ-T, EQ-T_frac, EQ-R (FID and KID too with --inception) and the training
speed, and writes study.json, study.md and study.png to --outdir. Run it
again after an interruption: finished configurations are kept and an
unfinished run continues from its checkpoint.
"""

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("outdir", None, "The study's directory.", required=True)
flags.DEFINE_string("configs", "stylegan2,config-b,stylegan3-t,stylegan3-r",
                    "Comma-separated configurations: a preset and optional :setting=value.")
flags.DEFINE_string("data", None, "Dataset (as afgan-train's --data; default builtin).")
flags.DEFINE_string("preset", None, "Run preset shared by every configuration, e.g. tiny.")
flags.DEFINE_float("kimg", None, "Training length of every configuration (thousands of images).")
flags.DEFINE_integer("batch", None, "Batch size.")
flags.DEFINE_integer("resolution", None, "Training resolution.")
flags.DEFINE_float("gamma", None, "R1 weight.")
flags.DEFINE_float("tick", None, "Thousands of images per tick.")
flags.DEFINE_integer("seed", None, "Seed of every run.")
flags.DEFINE_integer("metrics-num", 1000, "Samples per metric.")
flags.DEFINE_string("inception", None, "InceptionV3 weights: adds FID and KID.")


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.study import parse_configs
    from keras_afgan.study import run_study

    configs = parse_configs(_FLAGS.configs)
    if _FLAGS["metrics-num"].value < 1:
        raise ValueError(f"Expected --metrics-num >= 1. Received: {_FLAGS['metrics-num'].value}")
    settings = {name: value for name, value in (
        ("data", _FLAGS.data), ("preset", _FLAGS.preset), ("kimg", _FLAGS.kimg),
        ("batch", _FLAGS.batch), ("resolution", _FLAGS.resolution), ("gamma", _FLAGS.gamma),
        ("tick", _FLAGS.tick), ("seed", _FLAGS.seed)) if value is not None}
    run_study(_FLAGS.outdir, configs, settings, metrics_num=_FLAGS["metrics-num"].value,
              inception=_FLAGS.inception)
    print(f"Wrote {_FLAGS.outdir}/study.json, study.md and study.png")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
