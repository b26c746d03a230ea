"""The paper's equivariance study: train several configurations on one dataset
for the same kimg, measure each, and tabulate and plot the results.

    afgan-study --outdir=runs/study --preset=tiny --kimg=20 \\
        --configs=stylegan2,config-b,stylegan3-t,stylegan3-t:noise_inputs=1

A configuration is a `--cfg` preset, optionally followed by `:setting=value`
overrides of the run's ablation and recipe settings (`noise_inputs`,
`fixed_fourier`, `critical_sampling`, `filter_window`, `stopband_start`,
`margin_size`, `mixing_prob`, `pl_weight`, `map_depth`). Each trains in its
own directory under `outdir` (a killed study continues each run where its
checkpoint left it), then gets EQ-T, EQ-T_frac and EQ-R (not for
generators without an input transform: config A), FID and KID with an
Inception weights file, and its training speed (img/s over the ticks after
the first, which compiles). A configuration whose `result.json` exists is
not run again. `study.json`, `study.md` (a table) and `study.png` (a
grouped bar chart of the EQ metrics) summarise them all.
"""

import dataclasses
import json
import os
import re
import statistics

from keras_afgan.metrics.registry import compute_metrics
from keras_afgan.models.presets import PRESETS
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train

EQ_COLUMNS = ("eqt50k_int", "eqt50k_frac", "eqr50k")
FEATURE_COLUMNS = ("fid50k_full", "kid50k_full")
# Settings a configuration may override, and how their values parse.
OVERRIDES = {"noise_inputs": bool, "fixed_fourier": bool, "critical_sampling": bool,
             "filter_window": str, "stopband_start": float, "margin_size": int,
             "mixing_prob": float, "pl_weight": float, "map_depth": int}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """One configuration of a study: `label` as given, its preset and overrides."""

    label: str
    cfg: str
    overrides: tuple  # ((name, value), ...)

    @property
    def slug(self):
        """A directory name for the run."""
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", self.label.replace(":", "__"))


def _parse_value(name, text):
    kind = OVERRIDES[name]
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"Expected {name}=0 or 1. Received: {name}={text!r}")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"Expected {name} to be a {kind.__name__}. Received: {text!r}") from None


def parse_configs(text):
    """'stylegan2,stylegan3-t:noise_inputs=1:filter_window=lanczos' -> [StudyConfig, ...]."""
    configs = []
    for item in str(text or "").split(","):
        item = item.strip()
        if not item:
            continue
        cfg, *settings = item.split(":")
        if cfg not in PRESETS:
            raise ValueError(f"Expected a configuration from {sorted(PRESETS)}. Received: {cfg!r} "
                             f"(in {item!r})")
        overrides = []
        for setting in settings:
            name, sep, value = setting.partition("=")
            if not sep or name not in OVERRIDES:
                raise ValueError(f"Expected settings like noise_inputs=1 from {sorted(OVERRIDES)}. "
                                 f"Received: {setting!r} (in {item!r})")
            overrides.append((name, _parse_value(name, value)))
        configs.append(StudyConfig(item, cfg, tuple(overrides)))
    labels = [c.label for c in configs]
    if not configs or len(set(labels)) != len(labels):
        raise ValueError(f"Expected one or more distinct configurations. Received: {text!r}")
    return configs


def training_speed(run_dir):
    """Median img/s of a run's ticks after the first (which includes compilation)."""
    path = os.path.join(run_dir, "stats.jsonl")
    with open(path) as f:
        ticks = [json.loads(line) for line in f if line.strip()]
    speeds = [t["img_per_sec"] for t in ticks if "img_per_sec" in t]
    if not speeds:
        raise ValueError(f"Expected img_per_sec in {path}. Received: no ticks")
    return statistics.median(speeds[1:] or speeds)


def run_study(outdir, configs, train_settings, metrics_num=1000, inception=None,
              verbose=True):
    """Train and measure each configuration; returns the list of results.

    Args:
        outdir: the study's directory.
        configs: `StudyConfig`s (see `parse_configs`).
        train_settings: `afgan-train` settings shared by every run (a dict of
            `RunConfig` fields: preset, data, kimg, batch, ...).
        metrics_num: samples per metric.
        inception: InceptionV3 weights for FID and KID (None: skipped).
        verbose: progress output.
    """
    from keras_afgan.data.sources import open_images
    from keras_afgan.models.saving import load_keras_file

    os.makedirs(outdir, exist_ok=True)
    results = []
    for study_config in configs:
        run_dir = os.path.join(outdir, study_config.slug)
        result_path = os.path.join(run_dir, "result.json")
        if os.path.exists(result_path):
            with open(result_path) as f:
                results.append(json.load(f))
            if verbose:
                print(f"[{study_config.label}] done before: {result_path}", flush=True)
            continue
        settings = dict(train_settings, **dict(study_config.overrides))
        config = resolve_config(outdir=run_dir, cfg=study_config.cfg, **settings)
        if verbose:
            print(f"[{study_config.label}] training in {run_dir}", flush=True)
        train(config)
        G = load_keras_file(os.path.join(run_dir, "generator.keras"), "generator")
        names = [n for n in EQ_COLUMNS if G.has_input_transform]
        dataset = None
        if inception:
            names += list(FEATURE_COLUMNS)
            dataset = open_images(config.data, resolution=G.img_resolution,
                                  use_labels=G.c_dim > 0, channels=G.img_channels)
        values = compute_metrics(G, names, num=metrics_num, dataset=dataset, inception=inception,
                                 seed=config.seed, verbose=verbose) if names else {}
        result = {"label": study_config.label, "cfg": study_config.cfg,
                  "overrides": dict(study_config.overrides), "kimg": config.kimg,
                  "img_per_sec": training_speed(run_dir), "metrics": values,
                  "metrics_num": metrics_num, "backend": _backend()}
        with open(result_path + ".partial", "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
        os.replace(result_path + ".partial", result_path)
        results.append(result)
    write_summary(outdir, results)
    return results


def _backend():
    import keras

    return keras.config.backend()


def markdown_table(results):
    """The study as a markdown table: one row per configuration."""
    columns = list(EQ_COLUMNS) + [c for c in FEATURE_COLUMNS
                                  if any(c in r["metrics"] for r in results)]
    header = "| configuration | " + " | ".join(columns) + " | train img/s |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for r in results:
        cells = [f"{r['metrics'][c]:.2f}" if c in r["metrics"] else "n/a" for c in columns]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['img_per_sec']:.2f} |")
    return "\n".join(lines) + "\n"


def bar_chart(results, path):
    """A grouped bar chart of EQ-T, EQ-T_frac and EQ-R (dB) per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [r["label"] for r in results]
    x = np.arange(len(labels))
    width = 0.8 / len(EQ_COLUMNS)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 4))
    for i, column in enumerate(EQ_COLUMNS):
        values = [r["metrics"].get(column, np.nan) for r in results]
        ax.bar(x + (i - (len(EQ_COLUMNS) - 1) / 2) * width, values, width, label=column)
    for i, r in enumerate(results):
        if not any(c in r["metrics"] for c in EQ_COLUMNS):
            ax.text(i, 0.5, "n/a: no input transform", rotation=90, ha="center", va="bottom",
                    fontsize=8, color="gray")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Equivariance per configuration (higher is more equivariant)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_summary(outdir, results):
    """`study.json`, `study.md` and `study.png` in `outdir`."""
    with open(os.path.join(outdir, "study.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    with open(os.path.join(outdir, "study.md"), "w") as f:
        f.write(markdown_table(results))
    bar_chart(results, os.path.join(outdir, "study.png"))

