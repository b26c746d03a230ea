"""Metrics by name, as `afgan-metrics --metrics=...` and `afgan-train --metrics=...` take them.

| name | what | needs |
|---|---|---|
| `eqt50k_int` | EQ-T, dB | G |
| `eqt50k_frac` | EQ-T_frac, dB | G |
| `eqr50k` | EQ-R, dB | G |
| `fid50k_full` | FID against the whole dataset | G, data, Inception weights |
| `kid50k_full` | KID against the whole dataset | G, data, Inception weights |
| `pr50k3_full` | precision and recall (k = 3) | G, data, Inception weights |

The nominal sample count is 50k; `num` overrides it for every metric (CPU
runs use a few hundred).
"""

import time

from keras_afgan.metrics import equivariance
from keras_afgan.metrics import fid

EQUIVARIANCE_METRICS = equivariance.EQ_METRICS
FEATURE_METRICS = ("fid50k_full", "kid50k_full", "pr50k3_full")
METRICS = EQUIVARIANCE_METRICS + FEATURE_METRICS
NOMINAL_NUM = 50000


def parse_metrics(text):
    """'eqt50k_int,fid50k_full' -> ['eqt50k_int', 'fid50k_full'] (checked); '' or 'none' -> []."""
    names = [n.strip() for n in str(text or "").split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"Expected metrics from {list(METRICS)}. Received: {unknown}")
    return names


def snapshot_metrics(config, dataset):
    """The metrics of a training run's snapshots: `afgan-train --metrics`.

    Passed to `keras_afgan.training.run.train(config, snapshot_metrics=...)`,
    which calls it once before training. Reads `config.metrics` (names),
    `config.metrics_num`, `config.inception`, `config.seed` and
    `config.verbose` (a `RunConfig`). The Inception weights are loaded here,
    so a missing file fails the run at once rather than at the first
    snapshot.

    Returns:
        A callable `generator -> {result name: value}`, or None when
        `config.metrics` names none.
    """
    names = parse_metrics(config.metrics)
    if not names:
        return None
    inception = None
    if any(name in FEATURE_METRICS for name in names):
        inception = fid.InceptionFeatures(config.inception)

    def metrics_fn(generator):
        return compute_metrics(generator, names, num=config.metrics_num, dataset=dataset,
                               inception=inception, seed=config.seed,
                               verbose=bool(config.verbose))

    return metrics_fn


def compute_metrics(G, metrics, num=None, dataset=None, inception=None, batch_size=16, seed=0,
                    verbose=False):
    """Compute `metrics` (names) for G; returns `{result name: value}`.

    Args:
        G: a `Generator`.
        metrics: names from `METRICS`.
        num: samples per metric (default 50000); reals: all of `dataset`.
        dataset: a `keras_afgan.data.sources.ImageDataset` (FID/KID/PR, and
            labels for conditional equivariance sampling).
        inception: an `InceptionFeatures`, or the path of its weights file.
        batch_size: generator batch for FID/KID/PR (equivariance uses 4).
        seed: sampling seed.
        verbose: print each result as it is computed.
    """
    import numpy as np

    metrics = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    num = NOMINAL_NUM if num is None else int(num)
    labels = None
    if dataset is not None and G.c_dim and dataset.labels is not None:
        labels = np.eye(G.c_dim, dtype=np.float32)[dataset.labels]
    results = {}
    needs_features = [m for m in metrics if m in FEATURE_METRICS]
    if needs_features:
        if dataset is None:
            raise ValueError(f"Expected a dataset (--data) for {needs_features}. Received: None")
        if not isinstance(inception, fid.InceptionFeatures):
            inception = fid.InceptionFeatures(inception)
        reals = fid.real_features(dataset.images, inception)
        fakes = fid.generated_features(G, inception, num, batch_size=batch_size, seed=seed,
                                       labels=labels)
    for name in metrics:
        start = time.time()
        if name in EQUIVARIANCE_METRICS:
            values = {name: equivariance.sampled_equivariance(G, name, num=num, seed=seed,
                                                              labels=labels)}
        elif name == "fid50k_full":
            values = {name: fid.fid_from_features(reals, fakes)}
        elif name == "kid50k_full":
            values = {name: fid.kernel_inception_distance(reals, fakes, seed=seed)}
        else:
            precision, recall = fid.precision_recall(reals, fakes)
            values = {f"{name}_precision": precision, f"{name}_recall": recall}
        results.update(values)
        if verbose:
            for key, value in values.items():
                print(f"{key} {value:.4f} ({time.time() - start:.1f} s, num={num})", flush=True)
    return results
