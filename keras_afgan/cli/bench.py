"""afgan-bench: time the generator forward pass or a full training iteration.

    python -m keras_afgan.cli.bench --mode=forward --res=64 --cbase=8192 --cmax=128 --batch=8
    KERAS_BACKEND=jax afgan-bench --mode=train --json=bench.jsonl
    afgan-bench --compare-reference=~/src/stylegan3 --r1_interval=1 --json=side_by_side.jsonl

Prints a table; with --json, appends one JSON line (backend, mode, batch,
img_per_s, peak_mem_mb, ...). See keras_afgan.bench for what is timed.

--compare-reference=SRC_DIR (a checkout of NVlabs/stylegan3, not shipped
here) times the reference's CPU path (keras_afgan/reference_bench.py) and
ours on each of --backends, for each of --modes, one child process at a time
(never two at once: they would share the cores), each with the plain
convolution roofline measured in the same process; then prints one table
with our speed as a multiple of the reference's. The reference runs twice:
"reference" as its users run it (with torch's huge pages, like ours), and
"reference-tuned" with the process settings our tools give torch
(`keras_afgan.cpu_tuning`: glibc keeps freed memory), which made its
training step 3-4x faster on a 2-core AVX-512 machine (BUILD_NOTES.md):
"x ref" compares with the first, "x tuned" with the second (code against
code).
"""

import json
import os
import subprocess
import sys
import tempfile

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
flags.DEFINE_bool("roofline", False, "Afterwards, time a plain 3x3 128-to-128 convolution in the "
                  "same process (GFLOP/s, in the result as roofline_gflops).")
flags.DEFINE_string("compare-reference", None,
                    "A checkout of the reference (NVlabs/stylegan3): time its CPU path beside ours "
                    "on --backends for --modes, one process at a time, and print the ratios.")
flags.DEFINE_list("backends", ["tensorflow", "jax", "torch"], "--compare-reference: our backends.")
flags.DEFINE_list("modes", ["forward", "train"], "--compare-reference: what to time.")
flags.DEFINE_integer("train_warmup", 1, "--compare-reference: untimed R1 cycles for train rows.")
flags.DEFINE_integer("train_repeats", 3, "--compare-reference: timed R1 cycles for train rows.")

BACKENDS = ("tensorflow", "jax", "torch")
REFERENCES = ("reference", "reference-tuned")  # as users run it; with our process settings
_SHARED_FLAGS = ("res", "cbase", "cmax", "zdim", "wdim", "batch", "r1_interval", "num_layers")


def _child(command, env, json_path):
    """Run one benchmark process to completion; its JSON line, or an error row."""
    print("$ " + " ".join(command), flush=True)
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        return {"error": f"exit status {completed.returncode}"}
    with open(json_path) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1])


def compare_reference(src):
    """The side-by-side run of --compare-reference; returns its rows."""
    src = os.path.abspath(os.path.expanduser(src))
    if not os.path.isfile(os.path.join(src, "training", "networks_stylegan3.py")):
        raise ValueError(f"Expected --compare-reference to be a checkout of NVlabs/stylegan3 "
                         f"(with training/networks_stylegan3.py). Received: {src!r}")
    for name in _FLAGS.backends:
        if name not in BACKENDS:
            raise ValueError(f"Expected --backends from {BACKENDS}. Received: {name!r}")
    from keras_afgan.bench import MODES

    for mode in _FLAGS.modes:
        if mode not in MODES:
            raise ValueError(f"Expected --modes from {MODES}. Received: {mode!r}")
    if _FLAGS.cfg not in ("stylegan3-t", "stylegan3-r") or _FLAGS.precision != "float32" \
            or _FLAGS.augpipe:
        raise ValueError("--compare-reference times the reference's float32 StyleGAN3 without "
                         "augmentation: use --cfg=stylegan3-t|stylegan3-r, --precision=float32 "
                         f"and no --augpipe. Received: --cfg={_FLAGS.cfg} "
                         f"--precision={_FLAGS.precision} --augpipe={_FLAGS.augpipe!r}")
    reference_script = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                    "reference_bench.py")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in _FLAGS.modes:
            timing = ([f"--warmup={_FLAGS.train_warmup}", f"--repeats={_FLAGS.train_repeats}"]
                      if mode == "train" else
                      [f"--warmup={_FLAGS.warmup}", f"--repeats={_FLAGS.repeats}"])
            shared = [f"--{name}={getattr(_FLAGS, name)}" for name in _SHARED_FLAGS]
            shared += [f"--mode={mode}", f"--cfg={_FLAGS.cfg}", "--roofline"] + timing
            for backend in list(REFERENCES) + list(_FLAGS.backends):
                json_path = os.path.join(tmp, f"{mode}-{backend}.jsonl")
                env = dict(os.environ)
                if backend in REFERENCES:
                    # Torch's huge pages, as ours (prepare_process) in both.
                    env.setdefault("THP_MEM_ALLOC_ENABLE", "1")
                    command = [sys.executable, reference_script, f"--src={src}"]
                    if backend == "reference-tuned":
                        command.append("--reuse_freed_memory")
                else:
                    env["KERAS_BACKEND"] = backend
                    command = [sys.executable, "-m", "keras_afgan.cli.bench",
                               f"--jit={_FLAGS.jit}"]
                row = _child(command + shared + [f"--json={json_path}"], env, json_path)
                row.update(backend=backend, mode=mode)
                rows.append(row)
    return rows


def print_comparison(rows):
    """The side-by-side table: img/s and its multiple of each reference row's."""
    baselines = [{row["mode"]: row.get("img_per_s") for row in rows if row["backend"] == name}
                 for name in REFERENCES]
    print(f"\n{'mode':<8} {'backend':<15} {'img/s':>8} {'x ref':>7} {'x tuned':>7} "
          f"{'s/iter':>8} {'peak MB':>8} {'conv GFLOP/s':>13}")
    for row in rows:
        if "error" in row:
            print(f"{row['mode']:<8} {row['backend']:<15} failed: {row['error']}")
            continue
        ratios = ""
        for baseline in baselines:
            base = baseline.get(row["mode"])
            ratios += f" {row['img_per_s'] / base:7.2f}" if base else f" {'-':>7}"
        roofline = row.get("roofline_gflops")
        roofline = f"{roofline:13.0f}" if roofline else f"{'-':>13}"
        print(f"{row['mode']:<8} {row['backend']:<15} {row['img_per_s']:8.3f}{ratios} "
              f"{row['sec_per_iteration']:8.3f} {row['peak_mem_mb']:8.0f} {roofline}")


def main(argv):
    del argv
    src = _FLAGS["compare-reference"].value
    if src:
        rows = compare_reference(src)
        print_comparison(rows)
        if _FLAGS.json:
            with open(_FLAGS.json, "a") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        if any("error" in row for row in rows):
            raise SystemExit(1)
        return
    prepare_process()
    from keras_afgan.bench import BenchConfig
    from keras_afgan.bench import run_benchmark

    config = BenchConfig(cfg=_FLAGS.cfg, res=_FLAGS.res, cbase=_FLAGS.cbase, cmax=_FLAGS.cmax,
                         zdim=_FLAGS.zdim, wdim=_FLAGS.wdim, batch=_FLAGS.batch,
                         mode=_FLAGS.mode, jit=_FLAGS.jit, precision=_FLAGS.precision,
                         warmup=_FLAGS.warmup, repeats=_FLAGS.repeats,
                         r1_interval=_FLAGS.r1_interval, num_layers=_FLAGS.num_layers,
                         augpipe=_FLAGS.augpipe, aug_p=_FLAGS.aug_p, roofline=_FLAGS.roofline)
    result = run_benchmark(config)
    print(f"{'backend':<11} {'mode':<8} {'precision':<15} {'jit':<5} {'batch':>5} "
          f"{'img/s':>8} {'s/iter':>8} {'peak MB':>8}")
    print(f"{result['backend']:<11} {result['mode']:<8} {result['precision']:<15} "
          f"{str(result['jit']):<5} {result['batch']:>5} {result['img_per_s']:>8.2f} "
          f"{result['sec_per_iteration']:>8.3f} {result['peak_mem_mb']:>8.0f}")
    if result["roofline_gflops"]:
        print(f"plain 3x3 128->128 convolution: {result['roofline_gflops']:.0f} GFLOP/s")
    if _FLAGS.json:
        with open(_FLAGS.json, "a") as f:
            f.write(json.dumps(result) + "\n")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
