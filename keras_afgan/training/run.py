"""A whole training run: resolve settings, build or resume, `fit`, write outputs.

`afgan-train` is a thin wrapper around `train()`; tests call it directly.
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from keras_afgan.metrics.fid import InceptionFeatures
from keras_afgan.metrics.registry import FEATURE_METRICS
from keras_afgan.metrics.registry import compute_metrics
from keras_afgan.metrics.registry import parse_metrics
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.sampling import class_labels
from keras_afgan.models.sampling import inference_scope
from keras_afgan.models.sampling import seed_latents
from keras_afgan.training.callbacks import TrainingMonitor
from keras_afgan.training.callbacks import atomic_write_text
from keras_afgan.training.callbacks import grid_inputs
from keras_afgan.training.distribute import check_strategy
from keras_afgan.training.distribute import make_distribution
from keras_afgan.training.distribute import mbstd_group
from keras_afgan.training.gan import AliasFreeGAN
from keras_afgan.training.gan import default_optimizers
from keras_afgan.training.images import save_image_grid

CONFIGS = ("stylegan3-t", "stylegan3-r")
# Dtype policies of G and D (weights, EMAs and losses stay float32 in all).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# Run presets: settings a user would otherwise pass as flags.
RUN_PRESETS = {
    # CPU-sized: 32 px, narrow layers, a short schedule on the built-in faces.
    "tiny": dict(resolution=32, cbase=2048, cmax=32, z_dim=64, w_dim=64, num_layers=8,
                 margin_size=6, batch=8, mbstd_group=4, gamma=0.5, tick=0.4, snap=5, kimg=20,
                 mirror=True, metrics_num=200),
}


@dataclasses.dataclass
class RunConfig:
    """Settings of a training run (the flags of `afgan-train`)."""

    outdir: str
    cfg: str = "stylegan3-t"
    data: str = "builtin"
    resolution: int = None
    batch: int = 32
    gamma: float = 2.0
    kimg: float = 25000
    tick: float = 4.0
    snap: int = 50
    mirror: bool = False
    cond: bool = False
    glr: float = None
    dlr: float = 0.002
    cbase: int = 32768
    cmax: int = 512
    map_depth: int = 2
    mbstd_group: int = 4
    z_dim: int = 512
    w_dim: int = 512
    num_layers: int = 14
    margin_size: int = 10
    seed: int = 0
    resume: str = None
    preset: str = None
    metrics: str = ""
    metrics_num: int = 50000
    inception: str = None
    strategy: str = "none"
    precision: str = "float32"
    verbose: int = 1

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def resolve_config(**settings):
    """A `RunConfig` from flags: the preset's values, overridden by explicit ones.

    Explicit settings equal to `None` are ignored (absl flags left unset).
    """
    explicit = {k: v for k, v in settings.items() if v is not None}
    preset = explicit.get("preset")
    values = {}
    if preset is not None:
        if preset not in RUN_PRESETS:
            raise ValueError(f"Unknown preset {preset!r}. Expected one of: {sorted(RUN_PRESETS)}")
        values.update(RUN_PRESETS[preset])
    values.update(explicit)
    unknown = set(values) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise ValueError(f"Unknown settings: {sorted(unknown)}")
    config = RunConfig(**values)
    _validate(config)
    return config


def _validate(config):
    if config.cfg not in CONFIGS:
        raise ValueError(f"Expected cfg in {CONFIGS}. Received: cfg={config.cfg!r}")
    for name in ("batch", "cbase", "cmax", "map_depth", "z_dim", "w_dim", "snap"):
        value = getattr(config, name)
        if int(value) != value or value < 1:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
    for name in ("kimg", "tick"):
        if getattr(config, name) <= 0:
            raise ValueError(f"Expected {name} > 0. Received: {getattr(config, name)!r}")
    parse_metrics(config.metrics)
    if int(config.metrics_num) != config.metrics_num or config.metrics_num < 1:
        raise ValueError(f"Expected metrics_num to be a positive integer. "
                         f"Received: {config.metrics_num!r}")
    if config.gamma < 0:
        raise ValueError(f"Expected gamma >= 0. Received: {config.gamma!r}")
    check_strategy(config.strategy)
    if config.precision not in PRECISIONS:
        raise ValueError(f"Expected precision in {PRECISIONS}. Received: {config.precision!r}")
    group = min(config.mbstd_group, config.batch)
    if config.batch % group:
        raise ValueError(
            f"Expected the batch size to be divisible by the minibatch-stddev group size "
            f"{config.mbstd_group}. Received: batch={config.batch}")


def build_networks(config, c_dim, resolution, img_channels=3):
    """Generator and discriminator for a resolved config (R: doubled G channels),
    with `config.precision` as their dtype policy."""
    keras.utils.set_random_seed(config.seed)  # the same seed gives the same initial weights
    is_r = config.cfg == "stylegan3-r"
    g_base, g_max = (config.cbase * 2, config.cmax * 2) if is_r else (config.cbase, config.cmax)
    G = Generator(
        z_dim=config.z_dim, c_dim=c_dim, w_dim=config.w_dim, img_resolution=resolution,
        img_channels=img_channels, channel_base=g_base, channel_max=g_max,
        num_layers=config.num_layers, margin_size=config.margin_size,
        conv_kernel=1 if is_r else 3, use_radial_filters=is_r,
        magnitude_ema_beta=0.5 ** (config.batch / 20000), mapping_layers=config.map_depth,
        seed=config.seed, dtype=config.precision, name="generator",
    )
    D = Discriminator(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
        channel_base=config.cbase, channel_max=config.cmax,
        mbstd_group_size=config.mbstd_group, dtype=config.precision, name="discriminator",
    )
    return G, D


def build_gan(config, c_dim, resolution, img_channels=3):
    """Generator, discriminator and compiled `AliasFreeGAN` for a resolved config."""
    G, D = build_networks(config, c_dim, resolution, img_channels)
    is_r = config.cfg == "stylegan3-r"
    gan = AliasFreeGAN(
        G, D, r1_gamma=config.gamma, ema_kimg=config.batch * 10 / 32, ema_rampup=0.05,
        blur_init_sigma=10.0 if is_r else 0.0, blur_fade_kimg=config.batch * 200 / 32,
        seed=config.seed,
    )
    g_opt, d_opt = default_optimizers(
        gan.r1_interval, g_lr=0.0025 if config.glr is None else config.glr, d_lr=config.dlr)
    gan.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    return gan


def snapshot_metrics(config, source):
    """The metrics callable of a run (`config.metrics` at each snapshot), or None.

    The Inception weights are loaded here, before training, so a missing
    file fails the run at once rather than at the first snapshot.
    """
    names = parse_metrics(config.metrics)
    if not names:
        return None
    inception = None
    if any(name in FEATURE_METRICS for name in names):
        inception = InceptionFeatures(config.inception)

    def metrics_fn(generator):
        return compute_metrics(generator, names, num=config.metrics_num, dataset=source,
                               inception=inception, seed=config.seed,
                               verbose=bool(config.verbose))

    return metrics_fn


def _changed_settings(saved, config):
    """Saved settings that `config` changes, among those a continued run must keep."""
    # A step's result does not depend on the device count: the strategy may change.
    free = {"kimg", "resume", "verbose", "outdir", "snap", "data", "metrics", "metrics_num",
            "inception", "strategy"}
    return {k for k in saved if k not in free and saved[k] != getattr(config, k, None)}


def train(config):
    """Run (or continue) training as `config` says; returns the `AliasFreeGAN`.

    Writes to `config.outdir`: `config.json`, `reals.png` (training images),
    `stats.jsonl` (one line per tick), TensorBoard logs under `logs/`, image
    grids `fakes-tickTTTTTT.png` and G-EMA generators
    `network-snapshot-tickTTTTTT.keras` (and `generator.keras`, the latest) at
    each snapshot, and `checkpoint.keras` (the whole GAN with both optimizers'
    state) after every tick. A run whose `outdir` holds a checkpoint resumes
    from it; `config.resume` names a checkpoint of another run to start from.

    `config.strategy` trains on several devices (`keras_afgan.training.distribute`);
    only the chief process writes the outputs.
    """
    from keras_afgan import data as afgan_data

    # First: it starts TF's multi-worker runtime, jax.distributed or torch's process group.
    distribution = make_distribution(config.strategy)
    distribution.check_batch(config.batch, config.mbstd_group)
    os.makedirs(config.outdir, exist_ok=True)
    checkpoint = os.path.join(config.outdir, "checkpoint.keras")
    config_path = os.path.join(config.outdir, "config.json")
    resume_from = checkpoint if os.path.exists(checkpoint) else config.resume
    if os.path.exists(checkpoint) and os.path.exists(config_path):
        changed = _changed_settings(json.loads(open(config_path).read()), config)
        if changed:
            raise ValueError(
                f"{config.outdir} holds a run with other settings ({sorted(changed)}); "
                "use a new --outdir, or the same settings to continue it")
    if resume_from is not None and not os.path.exists(resume_from):
        raise ValueError(f"Expected --resume to name a checkpoint file. Received: {resume_from!r}")

    source = afgan_data.load_images(config.data, resolution=config.resolution,
                                    use_labels=config.cond)
    resolution = source.resolution
    c_dim = source.c_dim if config.cond else 0
    if resume_from is not None:
        with distribution.scope():
            gan = keras.saving.load_model(resume_from)
        if not isinstance(gan, AliasFreeGAN):
            raise ValueError(
                f"Expected {resume_from} to be a training checkpoint (AliasFreeGAN). "
                f"Received: {type(gan).__name__}")
        if gan.generator.img_resolution != resolution or gan.generator.c_dim != c_dim:
            raise ValueError(
                f"The checkpoint {resume_from} is for {gan.generator.img_resolution} px images "
                f"with c_dim={gan.generator.c_dim}; the data gives {resolution} px, "
                f"c_dim={c_dim}")
        if gan.precision != config.precision:
            raise ValueError(
                f"The checkpoint {resume_from} trains in {gan.precision}; expected --precision="
                f"{gan.precision} to continue it. Received: --precision={config.precision}")
    else:
        with distribution.scope():
            gan = build_gan(config, c_dim, resolution, source.channels)
    distribution.broadcast_state(gan)
    verbose = config.verbose if distribution.is_chief else 0
    if distribution.is_chief:
        atomic_write_text(config_path, config.to_json())

    steps_per_tick = max(int(math.ceil(config.tick * 1000 / config.batch)), 1)
    total_ticks = max(int(math.ceil(config.kimg / config.tick)), 1)
    done_steps = int(keras.ops.convert_to_numpy(gan.iteration))
    initial_tick = done_steps // steps_per_tick
    if initial_tick >= total_ticks:
        if verbose:
            print(f"Training already reached {config.kimg} kimg in {config.outdir}.")
        return gan
    dataset = distribution.dataset(
        source, config.batch, mbstd_group(gan.discriminator), z_dim=gan.generator.z_dim,
        seed=config.seed, mirror=config.mirror, start_step=done_steps)
    callbacks = []
    if distribution.is_chief:
        grid_shape = (4, 8)
        grid_z, grid_c = grid_inputs(gan.generator.z_dim, c_dim, grid_shape, config.seed)
        reals = os.path.join(config.outdir, "reals.png")
        if not os.path.exists(reals):
            picks = np.random.default_rng(config.seed).choice(len(source), grid_z.shape[0])
            save_image_grid(source.images[picks].astype(np.float32) / 127.5 - 1, reals,
                            grid_shape)
        callbacks.append(TrainingMonitor(
            config.outdir, steps_per_tick, config.batch, config.snap, grid_z, grid_c,
            grid_shape, log_dir=os.path.join(config.outdir, "logs"),
            metrics_fn=snapshot_metrics(config, source)))
    if verbose:
        devices = (f" ({config.strategy}, {distribution.num_replicas} devices)"
                   if config.strategy != "none" else "")
        print(f"Training {config.cfg} at {resolution} px on {config.data} "
              f"({len(source)} images, c_dim={c_dim}) on {keras.backend.backend()}{devices}: "
              f"{total_ticks} ticks of {steps_per_tick} steps x {config.batch} images"
              + (f", resuming at tick {initial_tick}" if initial_tick else ""))
    gan.fit(dataset, epochs=total_ticks, initial_epoch=initial_tick,
            steps_per_epoch=steps_per_tick, callbacks=callbacks, verbose=verbose,
            shuffle=False)
    return gan


def generate_images(generator, seeds, truncation_psi=1.0, class_idx=None, translate=(0, 0),
                    rotate=0.0):
    """Images `[len(seeds), R, R, C]` for integer seeds, as the reference draws z."""
    from keras_afgan.models.transforms import set_content_transform

    c = class_labels(generator, len(seeds), class_idx)
    set_content_transform(generator, translate, rotate)
    with inference_scope():
        return keras.ops.convert_to_numpy(generator(seed_latents(generator, seeds), c,
                                                    truncation_psi=truncation_psi))
