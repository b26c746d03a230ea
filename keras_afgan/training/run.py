"""A whole training run: resolve settings, build or resume, `fit`, write outputs.

`afgan-train` is a thin wrapper around `train()`; tests call it directly.
"""

import dataclasses
import json
import math
import os

import keras
import numpy as np

from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import NUM_DRAWS
from keras_afgan.augment import PRESETS as AUGMENT_PRESETS
from keras_afgan.augment import preset_kwargs
from keras_afgan.images import from_uint8
from keras_afgan.images import save_image_grid
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.presets import PRESETS
from keras_afgan.models.presets import generator_class
from keras_afgan.models.presets import get_preset
from keras_afgan.models.presets import network_kwargs
from keras_afgan.models.presets import preset_of
from keras_afgan.models.presets import training_kwargs
from keras_afgan.models.saving import load_keras_file
from keras_afgan.ops.filter_design import FILTER_WINDOWS
from keras_afgan.training.callbacks import TrainingMonitor
from keras_afgan.training.callbacks import atomic_write_text
from keras_afgan.training.callbacks import grid_inputs
from keras_afgan.training.callbacks import recorded_ticks
from keras_afgan.training.callbacks import rewind_outputs
from keras_afgan.training.distribute import check_strategy
from keras_afgan.training.distribute import make_distribution
from keras_afgan.training.distribute import mbstd_group
from keras_afgan.training.gan import AliasFreeGAN
from keras_afgan.training.gan import default_optimizers
from keras_afgan.training.pretrained import copy_weights
from keras_afgan.training.pretrained import load_pretrained

CONFIGS = tuple(PRESETS)
# Dtype policies of G and D (weights, EMAs and losses stay float32 in all).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Augmentation: ADA (p adjusted towards --target), none, or a fixed --p.
AUG_MODES = ("ada", "noaug", "fixed")

# Run presets: settings a user would otherwise pass as flags.
RUN_PRESETS = {
    # CPU-sized: 32 px, narrow layers, a short schedule on the built-in faces;
    # ADA reacts within it (p can move by 1 in 10 kimg, not 500).
    "tiny": dict(resolution=32, cbase=2048, cmax=32, z_dim=64, w_dim=64, num_layers=8,
                 margin_size=6, batch=8, mbstd_group=4, gamma=0.5, tick=0.4, snap=5, kimg=20,
                 mirror=True, metrics_num=200, ada_kimg=10),
}


@dataclasses.dataclass
class RunConfig:
    """Settings of a training run (the flags of `afgan-train`).

    `explicit` names the settings given explicitly (by `resolve_config`: the
    flags set, not the preset's or the defaults); the others yield to a run
    being continued and to a pretrained network's architecture. None (a
    config built directly) counts every setting that differs from its
    default as explicit.
    """

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
    map_depth: int = None  # None: the preset's (2 for StyleGAN3, 8 for StyleGAN2)
    mixing_prob: float = None  # None: the preset's (0 for StyleGAN3, 0.9 for StyleGAN2)
    pl_weight: float = None  # None: the preset's (0 for StyleGAN3, 2 for StyleGAN2)
    # The paper's ablation switches (StyleGAN3 generators only; design §2.3).
    filter_window: str = "kaiser"
    critical_sampling: bool = False
    noise_inputs: bool = False
    fixed_fourier: bool = False
    stopband_start: float = 2**2.1  # the first layer's stopband f_t,0
    mbstd_group: int = 4
    z_dim: int = 512
    w_dim: int = 512
    num_layers: int = 14
    margin_size: int = 10
    freezed: int = 0
    conv_clamp: int = 256
    fp16_res: int = 4
    seed: int = 0
    resume: str = None
    preset: str = None
    metrics: str = ""
    metrics_num: int = 50000
    inception: str = None
    vgg16: str = None
    batch_gpu: int = None
    strategy: str = "none"
    precision: str = "float32"
    aug: str = "ada"
    target: float = 0.6
    p: float = 0.2
    augpipe: str = "bgc"
    ada_kimg: float = None
    verbose: int = 1
    explicit: frozenset = dataclasses.field(default=None, compare=False, repr=False)

    def to_json(self):
        values = dataclasses.asdict(self)
        del values["explicit"]
        return json.dumps(values, indent=2, sort_keys=True)

    def explicit_settings(self):
        """The names of the settings given explicitly (see the class docstring)."""
        if self.explicit is not None:
            return set(self.explicit)
        return {f.name for f in dataclasses.fields(self)
                if f.name != "explicit" and getattr(self, f.name) != f.default}


# Settings fixed by the networks themselves: a run started from pretrained
# networks takes them from those, and refuses a flag that contradicts them.
ABLATIONS = ("filter_window", "critical_sampling", "noise_inputs", "fixed_fourier",
             "stopband_start")
ARCHITECTURE = ("cfg", "resolution", "cbase", "cmax", "map_depth", "z_dim", "w_dim",
                "num_layers", "margin_size") + ABLATIONS


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
    unknown = set(values) - ({f.name for f in dataclasses.fields(RunConfig)} - {"explicit"})
    if unknown:
        raise ValueError(f"Unknown settings: {sorted(unknown)}")
    config = RunConfig(**values, explicit=frozenset(set(explicit) - {"preset"}))
    _validate(config)
    return config


def _validate(config):
    if config.cfg not in CONFIGS:
        raise ValueError(f"Expected cfg in {CONFIGS}. Received: cfg={config.cfg!r}")
    for name in ("batch", "cbase", "cmax", "map_depth", "z_dim", "w_dim", "snap"):
        value = getattr(config, name)
        if name == "map_depth" and value is None:
            continue
        if int(value) != value or value < 1:
            raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
    for name in ("freezed", "conv_clamp", "fp16_res"):
        value = getattr(config, name)
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"Expected {name} to be an integer >= 0. Received: {value!r}")
    for name in ("kimg", "tick"):
        if getattr(config, name) <= 0:
            raise ValueError(f"Expected {name} > 0. Received: {getattr(config, name)!r}")
    if not isinstance(config.metrics, str):
        raise ValueError(f"Expected metrics to be a comma-separated string of metric names. "
                         f"Received: {config.metrics!r}")
    if int(config.metrics_num) != config.metrics_num or config.metrics_num < 1:
        raise ValueError(f"Expected metrics_num to be a positive integer. "
                         f"Received: {config.metrics_num!r}")
    if config.gamma < 0:
        raise ValueError(f"Expected gamma >= 0. Received: {config.gamma!r}")
    if config.filter_window not in FILTER_WINDOWS:
        raise ValueError(f"Expected filter_window in {FILTER_WINDOWS}. "
                         f"Received: {config.filter_window!r}")
    if generator_class(config.cfg) is not Generator:
        defaults = RunConfig(outdir="")
        for name in ABLATIONS:
            if getattr(config, name) != getattr(defaults, name):
                raise ValueError(
                    f"Expected {name}={getattr(defaults, name)!r} for cfg={config.cfg!r}: the "
                    f"ablation switches act on the alias-free generators. "
                    f"Received: {getattr(config, name)!r}")
    if not config.stopband_start > 0:
        raise ValueError(f"Expected stopband_start > 0. Received: {config.stopband_start!r}")
    if config.mixing_prob is not None and not 0 <= config.mixing_prob <= 1:
        raise ValueError(f"Expected mixing_prob in [0, 1]. Received: {config.mixing_prob!r}")
    if config.pl_weight is not None and not config.pl_weight >= 0:
        raise ValueError(f"Expected pl_weight >= 0. Received: {config.pl_weight!r}")
    check_strategy(config.strategy)
    if config.precision not in PRECISIONS:
        raise ValueError(f"Expected precision in {PRECISIONS}. Received: {config.precision!r}")
    if config.aug not in AUG_MODES:
        raise ValueError(f"Expected aug in {AUG_MODES}. Received: aug={config.aug!r}")
    if config.augpipe not in AUGMENT_PRESETS:
        raise ValueError(f"Expected augpipe in {sorted(AUGMENT_PRESETS)}. "
                         f"Received: augpipe={config.augpipe!r}")
    for name in ("target", "p"):
        value = getattr(config, name)
        if not 0 <= value <= 1:
            raise ValueError(f"Expected {name} in [0, 1]. Received: {name}={value!r}")
    if config.ada_kimg is not None and not config.ada_kimg > 0:
        raise ValueError(f"Expected ada_kimg > 0. Received: {config.ada_kimg!r}")
    group = min(config.mbstd_group, config.batch)
    if config.batch % group:
        raise ValueError(
            f"Expected the batch size to be divisible by the minibatch-stddev group size "
            f"{config.mbstd_group}. Received: batch={config.batch}")
    if config.batch_gpu is not None:
        if isinstance(config.batch_gpu, bool) or int(config.batch_gpu) != config.batch_gpu \
                or config.batch_gpu < 1:
            raise ValueError(f"Expected --batch-gpu to be a positive integer. "
                             f"Received: {config.batch_gpu!r}")
        if config.batch_gpu < group:
            raise ValueError(
                f"Expected --batch-gpu >= the minibatch-std group ({group}), as the reference "
                f"requires (or a smaller --mbstd-group). Received: --batch-gpu={config.batch_gpu}")


def _conv_clamp(config):
    return config.conv_clamp or None  # 0: no clamp


def _magnitude_ema_beta(config):
    return 0.5 ** (config.batch / 20000)  # the reference's, for its batch size


def build_networks(config, c_dim, resolution, img_channels=3):
    """Generator and discriminator for a resolved config (the preset
    `config.cfg` with the run's channels and settings), with
    `config.precision` as their dtype policy."""
    keras.utils.set_random_seed(config.seed)  # the same seed gives the same initial weights
    g_kwargs, d_kwargs = network_kwargs(config.cfg, config.cbase, config.cmax)
    g_kwargs.update(z_dim=config.z_dim, w_dim=config.w_dim)
    if config.map_depth is not None:
        g_kwargs.update(mapping_layers=config.map_depth)
    cls = generator_class(config.cfg)
    if cls is Generator:  # the alias-free schedule's settings
        g_kwargs.update(num_layers=config.num_layers, margin_size=config.margin_size,
                        magnitude_ema_beta=_magnitude_ema_beta(config),
                        filter_window=config.filter_window,
                        critical_sampling=config.critical_sampling,
                        noise_inputs=config.noise_inputs, fixed_fourier=config.fixed_fourier,
                        first_stopband=config.stopband_start)
    G = cls(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
        conv_clamp=_conv_clamp(config), num_fp16_res=config.fp16_res,
        seed=config.seed, dtype=config.precision, name="generator", **g_kwargs,
    )
    D = Discriminator(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
        conv_clamp=_conv_clamp(config), num_fp16_res=config.fp16_res,
        freeze_layers=config.freezed, mbstd_group_size=config.mbstd_group,
        dtype=config.precision, name="discriminator", **d_kwargs,
    )
    return G, D


def augment_settings(config, fine_tune=False):
    """`AliasFreeGAN`'s augmentation arguments for `config.aug`: ADA starts
    at p = 0 and moves p by 1 per `ada_kimg` thousand images (500, or 100
    for a fine-tune, as the reference); `fixed` keeps `config.p`."""
    if config.aug == "noaug":
        return {}
    pipe_kwargs = dict(preset_kwargs(config.augpipe), seed=config.seed, name="augment_pipe")
    if config.aug == "fixed":
        return {"augment_pipe": AugmentPipe(p=config.p, **pipe_kwargs)}
    ada_kimg = config.ada_kimg or (100.0 if fine_tune else 500.0)
    return {"augment_pipe": AugmentPipe(p=0.0, **pipe_kwargs), "ada_target": config.target,
            "ada_kimg": ada_kimg}


def _compile(gan, config):
    g_lr = get_preset(config.cfg)["g_lr"] if config.glr is None else config.glr
    g_opt, d_opt = default_optimizers(gan.r1_interval, g_lr=g_lr, d_lr=config.dlr,
                                      g_reg_interval=gan.lazy_g_interval)
    gan.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    return gan


def recipe_kwargs(config):
    """The preset's training recipe (`AliasFreeGAN` arguments) with the run's overrides."""
    recipe = dict(training_kwargs(config.cfg))
    for name in ("mixing_prob", "pl_weight"):
        if getattr(config, name) is not None:
            recipe[name] = getattr(config, name)
    return recipe


def build_gan(config, c_dim, resolution, img_channels=3):
    """Generator, discriminator and compiled `AliasFreeGAN` for a resolved config."""
    G, D = build_networks(config, c_dim, resolution, img_channels)
    gan = AliasFreeGAN(
        G, D, r1_gamma=config.gamma, ema_kimg=config.batch * 10 / 32, ema_rampup=0.05,
        blur_fade_kimg=config.batch * 200 / 32, seed=config.seed,
        **recipe_kwargs(config), **augment_settings(config),
    )
    return _compile(gan, config)


def pretrained_settings(pretrained):
    """The `RunConfig` settings that pretrained networks fix (and those they
    suggest: clamp, reduced-precision layers, minibatch-std group)."""
    G, D = pretrained.G_ema, pretrained.D
    s = G.synthesis
    cfg = preset_of(G)
    if cfg not in CONFIGS:
        raise ValueError(
            f"The generator in {pretrained.path} (conv_kernel={s.conv_kernel}, "
            f"use_radial_filters={s.use_radial_filters}) is of none of the configs {CONFIGS}")
    defaults = RunConfig(outdir="")
    return dict(cfg=cfg, resolution=G.img_resolution, cbase=D.channel_base, cmax=D.channel_max,
                map_depth=G.mapping_layers, z_dim=G.z_dim, w_dim=G.w_dim,
                # A StyleGAN2 generator has no alias-free schedule: the defaults stand.
                num_layers=getattr(s, "num_layers", defaults.num_layers),
                margin_size=getattr(s, "margin_size", defaults.margin_size),
                **{name: getattr(s, name, getattr(defaults, name)) for name in ABLATIONS
                   if name != "stopband_start"},
                stopband_start=getattr(s, "first_stopband", defaults.stopband_start),
                conv_clamp=int(s.conv_clamp or 0), fp16_res=s.num_fp16_res,
                mbstd_group=D.mbstd_group_size or 4)


def _transfer_config(config, pretrained):
    """`config` with the pretrained networks' architecture; a flag contradicting it is refused."""
    settings = pretrained_settings(pretrained)
    explicit = config.explicit_settings()
    conflicts = [f"--{name.replace('_', '-')}={getattr(config, name)} (the networks have "
                 f"{settings[name]})" for name in ARCHITECTURE
                 if name in explicit and getattr(config, name) != settings[name]]
    if conflicts:
        raise ValueError(
            f"{pretrained.path} fixes the architecture; these flags contradict it: "
            f"{', '.join(conflicts)}. Leave them out to fine-tune it as it is.")
    values = {k: v for k, v in settings.items() if k in ARCHITECTURE or k not in explicit}
    config = dataclasses.replace(config, **values)
    _validate(config)
    return config


def build_transfer_gan(config, pretrained, c_dim, img_channels):
    """A compiled `AliasFreeGAN` starting from pretrained networks (`--resume`).

    New networks get the pretrained architecture and this run's settings (labels,
    precision, clamp, Freeze-D, minibatch-std group, magnitude-EMA decay for
    its batch); every weight and statistic whose name and shape match is
    copied (G, G-EMA and D from their own sources). Where the labels differ
    from the pretrained ones, the label embeddings (G's `mapping.embed`, D's
    `mapping`) start fresh. As the reference when resuming: counters,
    optimizers and schedules start at 0, no EMA ramp-up, no D-input blur.

    Returns:
        `(gan, initialised)`: the GAN and `{"G": [...], "D": [...]}`, the
        reference names of the weights left as initialised.
    """
    if img_channels != pretrained.G_ema.img_channels:
        raise ValueError(
            f"The networks in {pretrained.path} make {pretrained.G_ema.img_channels}-channel "
            f"images; the data has {img_channels} channels")
    keras.utils.set_random_seed(config.seed)
    clamp = _conv_clamp(config)
    g_config = dict(pretrained.G_ema.get_config(), c_dim=c_dim, conv_clamp=clamp,
                    num_fp16_res=config.fp16_res, dtype=config.precision, name="generator",
                    trainable=True)
    if isinstance(pretrained.G_ema, Generator):
        g_config.update(magnitude_ema_beta=_magnitude_ema_beta(config))
    G = type(pretrained.G_ema).from_config(g_config)
    D = Discriminator.from_config(dict(
        pretrained.D.get_config(), c_dim=c_dim, conv_clamp=clamp, num_fp16_res=config.fp16_res,
        freeze_layers=config.freezed, mbstd_group_size=config.mbstd_group,
        dtype=config.precision, name="discriminator", trainable=True))
    relabelled = c_dim != pretrained.G_ema.c_dim
    g_fresh = ("mapping.embed.",) if relabelled else ()
    d_fresh = ("mapping.",) if relabelled else ()
    initialised = {"G": copy_weights(G, pretrained.G, g_fresh),
                   "D": copy_weights(D, pretrained.D, d_fresh)}
    recipe = dict(recipe_kwargs(config), blur_init_sigma=0.0)
    gan = AliasFreeGAN(G, D, r1_gamma=config.gamma, ema_kimg=config.batch * 10 / 32,
                       ema_rampup=None, seed=config.seed, **recipe,
                       **augment_settings(config, fine_tune=True))
    # Initialised weights stay the constructor's copies of G's.
    copy_weights(gan.generator_ema, pretrained.G_ema, g_fresh)
    return _compile(gan, config), initialised


# Settings a continued run may change: a step's result does not depend on
# them (the strategy: on the device count).
FREE = ("kimg", "resume", "verbose", "outdir", "snap", "data", "metrics", "metrics_num",
        "inception", "vgg16", "strategy", "batch_gpu")


def _continued_config(config, saved):
    """`config` for continuing the run whose `config.json` holds `saved`.

    Settings not given explicitly take the run's values; explicit ones that
    change anything but the `FREE` settings are refused.
    """
    explicit = config.explicit_settings()
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"explicit"}
    saved = {"aug": "noaug", **saved}  # runs saved before augmentation trained without
    changed = sorted(k for k in saved if k in fields and k in explicit and k not in FREE
                     and saved[k] != getattr(config, k))
    if changed:
        raise ValueError(
            f"{config.outdir} holds a run with other settings ({changed}); "
            "use a new --outdir, or the same settings to continue it")
    # How this process runs (its devices, its console) is not the run's to keep.
    inherited = {k: v for k, v in saved.items() if k in fields and k not in explicit
                 and k not in ("outdir", "verbose", "strategy")}
    return dataclasses.replace(config, **inherited)


def train(config, snapshot_metrics=None):
    """Run (or continue) training as `config` says; returns the `AliasFreeGAN`.

    Writes to `config.outdir`: `config.json` (the settings that run),
    `reals.png` (training images), `stats.jsonl` (one line per tick),
    TensorBoard logs under `logs/`, image grids `fakes-tickTTTTTT.png` and
    G-EMA generators `network-snapshot-tickTTTTTT.keras` (and
    `generator.keras`, the latest) at each snapshot (for a fine-tune, also at
    tick 0: the pretrained G-EMA), and `checkpoint.keras` (the whole GAN with
    both optimizers' state) after every tick.

    A run whose `outdir` holds a checkpoint continues from it exactly
    (settings not given explicitly are the run's). Otherwise `config.resume`
    names pretrained networks to fine-tune (`training.pretrained`: a reference
    snapshot pickle, a training checkpoint or an afgan-convert directory):
    their architecture, this run's training settings, counters and schedules
    from 0 (see `build_transfer_gan`).

    `config.strategy` trains on several devices (`keras_afgan.training.distribute`);
    only the chief process writes the outputs.

    Metrics reach the run through `snapshot_metrics`: called once as
    `snapshot_metrics(config, dataset)` before training, it returns the
    callable `generator -> {name: value}` run at each snapshot (or None).
    `afgan-train` passes `keras_afgan.metrics.snapshot_metrics`, which
    computes `config.metrics`; a config naming metrics without it is refused.
    """
    if config.metrics and snapshot_metrics is None:
        raise ValueError(
            f"The config asks for metrics ({config.metrics!r}) but no snapshot_metrics "
            "callback was given: use train(config, "
            "snapshot_metrics=keras_afgan.metrics.snapshot_metrics)")
    from keras_afgan import data as afgan_data

    # First: it starts TF's multi-worker runtime, jax.distributed or torch's process group.
    distribution = make_distribution(config.strategy)
    checkpoint = os.path.join(config.outdir, "checkpoint.keras")
    config_path = os.path.join(config.outdir, "config.json")
    continuing = os.path.exists(checkpoint)
    recorded = 0 if continuing or not os.path.isdir(config.outdir) else recorded_ticks(
        config.outdir)
    if recorded > 1:
        # A run killed before its first checkpoint has at most tick 1's outputs.
        raise ValueError(
            f"{config.outdir} holds outputs up to tick {recorded} but no "
            "checkpoint.keras to continue from; use a new --outdir (nothing was changed)")
    pretrained = None
    if continuing and os.path.exists(config_path):
        with open(config_path) as f:
            config = _continued_config(config, json.load(f))
    elif not continuing and config.resume is not None:
        pretrained = load_pretrained(config.resume)
        config = _transfer_config(config, pretrained)
    distribution.check_batch(config.batch, config.mbstd_group, config.batch_gpu)
    os.makedirs(config.outdir, exist_ok=True)

    channels = 3 if pretrained is None else pretrained.G_ema.img_channels
    source = afgan_data.open_images(config.data, resolution=config.resolution,
                                    use_labels=config.cond, channels=channels)
    resolution = source.resolution
    c_dim = source.c_dim if config.cond else 0
    initialised = None
    if continuing:
        with distribution.scope():
            gan = load_keras_file(checkpoint, "the run's checkpoint", compile=True)
        if not isinstance(gan, AliasFreeGAN):
            raise ValueError(
                f"Expected {checkpoint} to be a training checkpoint (AliasFreeGAN). "
                f"Received: {type(gan).__name__}")
        if gan.generator.img_resolution != resolution or gan.generator.c_dim != c_dim:
            raise ValueError(
                f"The checkpoint {checkpoint} is for {gan.generator.img_resolution} px images "
                f"with c_dim={gan.generator.c_dim}; the data gives {resolution} px, "
                f"c_dim={c_dim}")
        if gan.precision != config.precision:
            raise ValueError(
                f"The checkpoint {checkpoint} trains in {gan.precision}; expected --precision="
                f"{gan.precision} to continue it. Received: --precision={config.precision}")
    elif pretrained is not None:
        with distribution.scope():
            gan, initialised = build_transfer_gan(config, pretrained, c_dim, source.channels)
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
    if distribution.is_chief:
        # Outputs follow the checkpoint: what a killed run wrote after it goes.
        removed = rewind_outputs(config.outdir, initial_tick if continuing else -1)
        if removed and verbose:
            print("Removed what an interrupted run wrote after its last checkpoint (the run "
                  f"writes it again): {', '.join(removed)}")
    if initial_tick >= total_ticks:
        if verbose:
            print(f"Training already reached {config.kimg} kimg in {config.outdir}.")
        return gan
    # A memory setting, free to change on a continued run: set, not restored.
    gan.batch_gpu = distribution.step_batch_gpu(config.batch_gpu)
    dataset = distribution.dataset(
        source, config.batch, mbstd_group(gan.discriminator), z_dim=gan.generator.z_dim,
        seed=config.seed, mirror=config.mirror, start_step=done_steps,
        augment_draws=NUM_DRAWS if gan.augment_pipe is not None else 0,
        batch_gpu=config.batch_gpu)
    callbacks = []
    if distribution.is_chief:
        metrics_fn = None if snapshot_metrics is None else snapshot_metrics(config, source)
        grid_shape = (4, 8)
        grid_z, grid_c = grid_inputs(gan.generator.z_dim, c_dim, grid_shape, config.seed)
        reals = os.path.join(config.outdir, "reals.png")
        if not os.path.exists(reals):
            picks = np.random.default_rng(config.seed).choice(len(source), grid_z.shape[0])
            save_image_grid(from_uint8(source.read(picks)), reals,
                            grid_shape)
        callbacks.append(TrainingMonitor(
            config.outdir, steps_per_tick, config.batch, config.snap, grid_z, grid_c,
            grid_shape, log_dir=os.path.join(config.outdir, "logs"),
            metrics_fn=metrics_fn, snapshot_at_start=pretrained is not None,
            total_ticks=total_ticks))
    if verbose:
        if pretrained is not None:
            _report_transfer(pretrained, initialised)
        devices = (f" ({config.strategy}, {distribution.num_replicas} devices)"
                   if config.strategy != "none" else "")
        print(f"Training {config.cfg} at {resolution} px on {describe_source(source, c_dim)} "
              f"on {keras.backend.backend()}{devices}: "
              f"{total_ticks} ticks of {steps_per_tick} steps x {config.batch} images"
              + (f", resuming at tick {initial_tick}" if initial_tick else ""))
    gan.fit(dataset, epochs=total_ticks, initial_epoch=initial_tick,
            steps_per_epoch=steps_per_tick, callbacks=callbacks, verbose=verbose,
            shuffle=False)
    if verbose and source.failed:
        print(f"{len(source.failed)} images of {source.name} did not decode and were replaced "
              f"by the next readable one in every batch: {list(source.failed[:10])}"
              + (" and more" if len(source.failed) > 10 else ""))
    return gan


def describe_source(source, c_dim):
    """`'builtin (100 images, c_dim=0)'`, with the unreadable files skipped if any."""
    skipped = f", {len(source.skipped)} unreadable files skipped" if source.skipped else ""
    return f"{source.name} ({len(source)} images{skipped}, c_dim={c_dim})"


def _report_transfer(pretrained, initialised):
    print(f"Fine-tuning the networks of {pretrained.path} ({pretrained.kind}): counters and "
          "schedules start at 0, without EMA ramp-up or D-input blur.")
    for network in ("G", "D"):
        if initialised[network]:
            print(f"Initialised {network} weights (not in the pretrained networks, of another "
                  f"shape, or label embeddings for other labels): "
                  f"{_grouped(initialised[network])}")
    if pretrained.augment is not None:
        print(f"The pretrained run augmented with p={pretrained.augment['p']:.3f}; as the "
              "reference, a fine-tune starts its own (ADA: from p = 0, reacting 5x faster).")


def _grouped(names):
    """`['a.fc0.weight', 'a.fc0.bias']` -> `'a.fc0.{weight,bias}'`."""
    modules = {}
    for name in names:
        module, _, leaf = name.rpartition(".")
        modules.setdefault(module, []).append(leaf)
    return ", ".join(f"{module}.{leaves[0]}" if len(leaves) == 1
                     else f"{module}.{{{','.join(leaves)}}}" for module, leaves in modules.items())

