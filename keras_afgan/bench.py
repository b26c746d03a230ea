"""Timing of the generator forward pass and of a full training iteration.

`afgan-bench` / `python -m keras_afgan.cli.bench` wrap `run_benchmark`.

- forward: `G.predict_on_batch(z)` (XLA on TF and JAX when `jit`), `batch`
  images per call.
- train: `AliasFreeGAN.train_on_batch` as `afgan-train` compiles it (the
  backend's default, `steps.jit_compile_default`: XLA on JAX and on TF with
  an accelerator, a TF graph on TF CPUs, torch eager; `jit=False`: no XLA)
  of one G + D iteration with lazy R1
  every `r1_interval` iterations; one repeat is a whole R1 cycle
  (`r1_interval` iterations), so the time per iteration includes R1's share.
  With `augpipe` (an ADA preset, e.g. "bgc"), every image D sees goes
  through the augmentation pipe at p = `aug_p`.

After `warmup` calls (compilation), the median over `repeats` timed calls is
reported as images per second. `peak_mem_mb` is the process's peak resident
memory (CPU), or the accelerator's peak where the backend reports it. With
`roofline`, `conv_roofline` is measured afterwards in the same process.
"""

import dataclasses
import resource
import statistics

import keras
import numpy as np

from keras_afgan.models.presets import PRESETS
from keras_afgan.timing import ROOFLINE_SIZE
from keras_afgan.timing import conv_gflop
from keras_afgan.timing import time_calls

MODES = ("forward", "train")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class BenchConfig:
    cfg: str = "stylegan3-t"
    res: int = 64
    cbase: int = 8192
    cmax: int = 128
    zdim: int = 512
    wdim: int = 512
    batch: int = 8
    mode: str = "forward"
    jit: bool = True
    precision: str = "float32"
    warmup: int = 2
    repeats: int = 5
    r1_interval: int = 16
    num_layers: int = 14
    augpipe: str = ""
    aug_p: float = 0.5
    seed: int = 0
    roofline: bool = False


def _check(config):
    if config.mode not in MODES:
        raise ValueError(f"Expected mode in {MODES}. Received: {config.mode!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"Expected precision in {PRECISIONS}. Received: {config.precision!r}")
    if config.cfg not in PRESETS:
        raise ValueError(f"Expected cfg in {sorted(PRESETS)}. Received: {config.cfg!r}")
    for name in ("res", "cbase", "cmax", "zdim", "wdim", "batch", "repeats", "r1_interval"):
        if int(getattr(config, name)) < 1:
            raise ValueError(f"Expected {name} >= 1. Received: {getattr(config, name)!r}")
    if config.augpipe:
        from keras_afgan.augment import preset_kwargs

        preset_kwargs(config.augpipe)  # refuses an unknown preset
    if config.warmup < 0:
        raise ValueError(f"Expected warmup >= 0. Received: {config.warmup!r}")


def _peak_memory_mb():
    backend = keras.config.backend()
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
        elif backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                return stats["peak_bytes_in_use"] / 2**20
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # memory statistics are best-effort; fall back to the host's
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def compiled(fn):
    """`fn` compiled as `afgan-bench` runs code: XLA on TF and JAX, eager torch."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    return fn


def best_time(fn, *args, repeats=3):
    """Fastest of `repeats` calls of `fn(*args)` after one untimed call, in seconds."""
    return min(time_calls(lambda: keras.ops.convert_to_numpy(fn(*args)), 1, repeats))


def conv_roofline(batch=8, repeats=3):
    """GFLOP/s of a plain 3x3 128-to-128 convolution ('valid', 88 -> 86 px, float32).

    The machine's own convolution speed on this backend: the denominator of
    every "fraction of the hardware" in BUILD_NOTES.md. Compiled as
    `compiled` does.
    """
    rng = np.random.default_rng(0)
    size = ROOFLINE_SIZE + 2
    x = keras.ops.convert_to_tensor(rng.standard_normal((batch, size, size, 128)), "float32")
    w = keras.ops.convert_to_tensor(rng.standard_normal((3, 3, 128, 128)), "float32")
    seconds = best_time(compiled(lambda x, w: keras.ops.conv(x, w, padding="valid")), x, w,
                        repeats=repeats)
    return conv_gflop(3, 128, 128, ROOFLINE_SIZE, batch) / seconds


def build_models(config):
    """G and D as `afgan-train` builds them for these settings (unconditional)."""
    from keras_afgan.training.run import RunConfig
    from keras_afgan.training.run import build_networks

    run_config = RunConfig(outdir="", cfg=config.cfg, batch=config.batch, cbase=config.cbase,
                           cmax=config.cmax, z_dim=config.zdim, w_dim=config.wdim,
                           mbstd_group=min(4, config.batch), seed=config.seed,
                           precision=config.precision, num_layers=config.num_layers)
    return build_networks(run_config, c_dim=0, resolution=config.res)


def run_benchmark(config):
    """Time `config.mode`; returns a dict (`backend`, `mode`, `batch`, `img_per_s`, ...)."""
    from keras_afgan.training.gan import AliasFreeGAN

    _check(config)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        G, D = build_models(config)
        rng = np.random.default_rng(config.seed)
        # torch.compile traces (minutes) but is no faster than eager here, and
        # R1's double backward needs eager torch: torch runs eager.
        jit = bool(config.jit) and keras.config.backend() != "torch"
        if config.mode == "forward":
            G.compile(jit_compile=jit)
            z = rng.standard_normal((config.batch, config.zdim)).astype(np.float32)

            def step():
                keras.ops.convert_to_numpy(G.predict_on_batch(z))

            per_call, images_per_call = 1, config.batch
        else:
            augment = {}
            if config.augpipe:
                from keras_afgan.augment import NUM_DRAWS
                from keras_afgan.augment import AugmentPipe
                from keras_afgan.augment import preset_kwargs

                augment = {"augment_pipe": AugmentPipe(**preset_kwargs(config.augpipe),
                                                       p=config.aug_p)}
            gan = AliasFreeGAN(G, D, r1_interval=config.r1_interval, seed=config.seed, **augment)
            # What training runs: AliasFreeGAN's own choice per backend (XLA on
            # JAX, a TF graph on TF CPUs, eager torch); `jit=False` turns XLA off.
            gan.compile(**({} if config.jit else {"jit_compile": False}))
            jit = bool(gan.jit_compile)
            batch = {
                "images": rng.uniform(-1, 1, (config.batch, config.res, config.res, 3)).astype(
                    np.float32),
                "latents": rng.standard_normal((config.batch, 2, config.zdim)).astype(np.float32),
            }
            if augment:
                batch["augment"] = rng.uniform(size=(config.batch, 4, NUM_DRAWS)).astype(
                    np.float32)

            def step():
                for _ in range(config.r1_interval):
                    gan.train_on_batch(batch)

            per_call, images_per_call = config.r1_interval, config.batch * config.r1_interval
        times = time_calls(step, config.warmup, config.repeats)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    median = statistics.median(times)
    roofline = conv_roofline(config.batch) if config.roofline else None
    return {
        "backend": keras.config.backend(),
        "mode": config.mode,
        "cfg": config.cfg,
        "res": config.res,
        "cbase": config.cbase,
        "cmax": config.cmax,
        "batch": config.batch,
        "precision": config.precision,
        "augpipe": config.augpipe or None,
        "jit": jit,
        "img_per_s": images_per_call / median,
        "sec_per_iteration": median / per_call,
        "times": times,
        "peak_mem_mb": _peak_memory_mb(),
        "roofline_gflops": roofline,
    }
