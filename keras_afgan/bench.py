"""Timing of the generator forward pass and of a full training iteration.

`afgan-bench` / `python -m keras_afgan.cli.bench` wrap `run_benchmark`.

- forward: `G.predict_on_batch(z)` (compiled when `jit`), `batch` images per call.
- train: `AliasFreeGAN.train_on_batch` of one G + D iteration with lazy R1
  every `r1_interval` iterations; one repeat is a whole R1 cycle
  (`r1_interval` iterations), so the time per iteration includes R1's share.
  With `augpipe` (an ADA preset, e.g. "bgc"), every image D sees goes
  through the augmentation pipe at p = `aug_p`.

After `warmup` calls (compilation), the median over `repeats` timed calls is
reported as images per second. `peak_mem_mb` is the process's peak resident
memory (CPU), or the accelerator's peak where the backend reports it.
"""

import dataclasses
import resource
import statistics
import time

import keras
import numpy as np

from keras_afgan.models.presets import PRESETS

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
            gan.compile(jit_compile=jit)
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
        for _ in range(config.warmup):
            step()
        times = []
        for _ in range(config.repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    median = statistics.median(times)
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
    }
