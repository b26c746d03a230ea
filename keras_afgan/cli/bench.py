"""afgan-bench: time the generator forward pass or a full training iteration.

    python -m keras_afgan.cli.bench --mode=forward --res=64 --cbase=8192 --cmax=128 --batch=8
    KERAS_BACKEND=jax afgan-bench --mode=train --json=bench.jsonl

Prints a table; with --json, appends one JSON line (backend, mode, batch,
img_per_s, peak_mem_mb, ...). See keras_afgan.bench for what is timed.
"""

import json

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("cfg", "stylegan3-t", "Configuration: a preset of keras_afgan.models.PRESETS "
                    "(stylegan3-t, stylegan3-r).")
flags.DEFINE_integer("res", 64, "Resolution.")
flags.DEFINE_integer("cbase", 8192, "Channel base.")
flags.DEFINE_integer("cmax", 128, "Max. channels.")
flags.DEFINE_integer("zdim", 512, "z width.")
flags.DEFINE_integer("wdim", 512, "w width.")
flags.DEFINE_integer("batch", 8, "Batch size.")
flags.DEFINE_enum("mode", "forward", ["forward", "train"], "What to time.")
flags.DEFINE_bool("jit", True, "Compile with XLA on TF/JAX (torch always runs eager).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Dtype policy.")
flags.DEFINE_integer("warmup", 2, "Untimed calls first.")
flags.DEFINE_integer("repeats", 5, "Timed calls (median reported).")
flags.DEFINE_integer("r1_interval", 16, "Lazy R1 interval (train: one repeat = one R1 cycle).")
flags.DEFINE_integer("num_layers", 14, "Synthesis layers (the tiny preset: 8).")
flags.DEFINE_string("augpipe", "", "train: augment D's inputs with this ADA preset "
                    "(e.g. bgc) at p = --aug_p; empty: none.")
flags.DEFINE_float("aug_p", 0.5, "Augmentation probability with --augpipe.")
flags.DEFINE_string("json", None, "Append the result as one JSON line to this file.")


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.bench import BenchConfig
    from keras_afgan.bench import run_benchmark

    config = BenchConfig(cfg=_FLAGS.cfg, res=_FLAGS.res, cbase=_FLAGS.cbase, cmax=_FLAGS.cmax,
                         zdim=_FLAGS.zdim, wdim=_FLAGS.wdim, batch=_FLAGS.batch,
                         mode=_FLAGS.mode, jit=_FLAGS.jit, precision=_FLAGS.precision,
                         warmup=_FLAGS.warmup, repeats=_FLAGS.repeats,
                         r1_interval=_FLAGS.r1_interval, num_layers=_FLAGS.num_layers,
                         augpipe=_FLAGS.augpipe, aug_p=_FLAGS.aug_p)
    result = run_benchmark(config)
    print(f"{'backend':<11} {'mode':<8} {'precision':<15} {'jit':<5} {'batch':>5} "
          f"{'img/s':>8} {'s/iter':>8} {'peak MB':>8}")
    print(f"{result['backend']:<11} {result['mode']:<8} {result['precision']:<15} "
          f"{str(result['jit']):<5} {result['batch']:>5} {result['img_per_s']:>8.2f} "
          f"{result['sec_per_iteration']:>8.3f} {result['peak_mem_mb']:>8.0f}")
    if _FLAGS.json:
        with open(_FLAGS.json, "a") as f:
            f.write(json.dumps(result) + "\n")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
