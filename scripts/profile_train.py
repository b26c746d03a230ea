"""Where one training iteration spends its time, op by op (torch and JAX).

    KERAS_BACKEND=jax python scripts/profile_train.py [--res=64] [--top=25]

Builds the `afgan-bench` GAN (64 px StyleGAN3-T, cbase 8192, cmax 128,
z = w = 512, batch 8, R1 every iteration), runs one untimed iteration
(compilation), then profiles one more:

- torch: `torch.profiler` on the third iteration, self CPU time per op and
  input shapes (eager, so every op is one kernel).
- JAX: `jax.profiler.trace` (Perfetto trace), XLA's thunks summed by name
  and by kind (`convolution`, `dot`, `*_fusion`, ...); the op names are
  those of the optimised HLO (`--xla_dump_to` maps them to the model's code
  through their `op_name` metadata: `transpose(jvp(jvp(discriminator)))` is
  R1's double backward).
- TensorFlow: the iteration's wall time only (its CPU training runs a graph
  of oneDNN kernels; no per-op table here).

Process settings as the tools use them (`keras_afgan.cpu_tuning`) unless
`KERAS_AFGAN_CPU_TUNING=0`. Run nothing else meanwhile (2 cores).
"""

import argparse
import collections
import glob
import gzip
import json
import os
import tempfile
import time

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
from keras_afgan.cpu_tuning import tune_process  # noqa: E402

tune_process()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_afgan.bench import BenchConfig  # noqa: E402
from keras_afgan.bench import build_models  # noqa: E402
from keras_afgan.training.gan import AliasFreeGAN  # noqa: E402


def build(res):
    config = BenchConfig(mode="train", res=res, r1_interval=1)
    G, D = build_models(config)
    gan = AliasFreeGAN(G, D, r1_interval=1, seed=0)
    gan.compile()
    rng = np.random.default_rng(0)
    batch = {"images": rng.uniform(-1, 1, (config.batch, res, res, 3)).astype("float32"),
             "latents": rng.standard_normal((config.batch, 2, config.zdim)).astype("float32")}
    return gan, batch


def timed(gan, batch):
    start = time.perf_counter()
    gan.train_on_batch(batch)
    return time.perf_counter() - start


def profile_torch(gan, batch, top):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    # The heap kept for reuse (cpu_tuning) fills over the first iterations:
    # profile a warm one.
    print(f"second iteration {timed(gan, batch):.2f} s (warming the heap)")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        seconds = timed(gan, batch)
    print(f"profiled iteration {seconds:.2f} s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total",
                                                             row_limit=top))


def profile_jax(gan, batch, top):
    import jax

    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            seconds = timed(gan, batch)
        (path,) = glob.glob(os.path.join(tmp, "**", "perfetto_trace.json.gz"), recursive=True)
        with gzip.open(path) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    by_name, calls = collections.Counter(), collections.Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("ph") != "X" or "dur" not in event or name.startswith("$") \
                or "ThunkExecutor" in name or "Await" in name:
            continue
        by_name[name] += event["dur"] / 1e3
        calls[name] += 1
    by_kind = collections.Counter()
    for name, ms in by_name.items():
        by_kind[name.split(".")[0]] += ms
    print(f"iteration {seconds:.2f} s; XLA thunks {sum(by_name.values()) / 1e3:.2f} s")
    print("by kind (ms):")
    for kind, ms in by_kind.most_common(top):
        print(f"{ms:10.1f}  {kind}")
    print("slowest thunks (ms):")
    for name, ms in by_name.most_common(top):
        print(f"{ms:10.1f}  {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    gan, batch = build(args.res)
    print(f"first iteration (compiles) {timed(gan, batch):.1f} s")
    backend = keras.config.backend()
    if backend == "torch":
        profile_torch(gan, batch, args.top)
    elif backend == "jax":
        profile_jax(gan, batch, args.top)
    else:
        print(f"iteration {timed(gan, batch):.2f} s (no per-op table on TensorFlow)")


if __name__ == "__main__":
    main()
