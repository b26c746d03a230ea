"""Metrics by name, as `afgan-metrics --metrics=...` and `afgan-train --metrics=...` take them.

| name | what | needs |
|---|---|---|
| `eqt50k_int` | EQ-T, dB | G |
| `eqt50k_frac` | EQ-T_frac, dB | G |
| `eqr50k` | EQ-R, dB | G |
| `fid50k_full` | FID against the whole dataset | G, data, Inception weights |
| `kid50k_full` | KID against the whole dataset | G, data, Inception weights |
| `pr50k3_full` | precision and recall (k = 3), VGG16 features | G, data, VGG16 weights |

The nominal sample count is 50k; `num` overrides it for every metric (CPU
runs use a few hundred). Reals are the whole dataset for FID and KID, and
its first 50k (or `num`) images for precision/recall, as the reference.
Real features are cached on disk (`fid.real_features`): later snapshots
and runs on the same data skip reading it.
"""

import time

from keras_afgan.metrics import equivariance
from keras_afgan.metrics import fid

EQUIVARIANCE_METRICS = equivariance.EQ_METRICS
INCEPTION_METRICS = ("fid50k_full", "kid50k_full")
VGG16_METRICS = ("pr50k3_full",)
FEATURE_METRICS = INCEPTION_METRICS + VGG16_METRICS
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
    `config.metrics_num`, `config.inception`, `config.vgg16`, `config.seed`
    and `config.verbose` (a `RunConfig`). The feature networks are loaded
    here, so a missing weights file fails the run at once rather than at the
    first snapshot.

    Returns:
        A callable `generator -> {result name: value}`, or None when
        `config.metrics` names none.
    """
    names = parse_metrics(config.metrics)
    if not names:
        return None
    inception, vgg16 = _networks(names, config.inception, config.vgg16)

    def metrics_fn(generator):
        return compute_metrics(generator, names, num=config.metrics_num, dataset=dataset,
                               inception=inception, vgg16=vgg16, seed=config.seed,
                               verbose=bool(config.verbose))

    return metrics_fn


def _networks(names, inception, vgg16):
    """The feature networks `names` need (`FeatureNetwork`s or their weights
    paths in; loaded networks or None out)."""
    if any(n in INCEPTION_METRICS for n in names):
        if not isinstance(inception, fid.InceptionFeatures):
            inception = fid.InceptionFeatures(inception)
    else:
        inception = None
    if any(n in VGG16_METRICS for n in names):
        if not isinstance(vgg16, fid.VGG16Features):
            vgg16 = fid.VGG16Features(vgg16)
    else:
        vgg16 = None
    return inception, vgg16


def compute_metrics(G, metrics, num=None, dataset=None, inception=None, vgg16=None,
                    batch_size=16, seed=0, verbose=False, cache_dir=None):
    """Compute `metrics` (names) for G; returns `{result name: value}`.

    Args:
        G: a `Generator`.
        metrics: names from `METRICS`.
        num: samples per metric (default 50000); reals: all of `dataset`
            (FID, KID), its first `num` (precision/recall).
        dataset: a `StreamingDataset` (`keras_afgan.data.open_images`) or an
            `ImageDataset` (FID/KID/PR, and labels for conditional sampling).
        inception: an `InceptionFeatures`, or the path of its weights file.
        vgg16: a `VGG16Features`, or the path of its weights file.
        batch_size: generator batch for FID/KID/PR (equivariance uses 4).
        seed: sampling seed.
        verbose: print progress and each result as it is computed.
        cache_dir: where real features are cached (`fid.real_features`);
            False disables the cache.
    """
    import numpy as np

    metrics = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics))
    num = NOMINAL_NUM if num is None else int(num)
    labels = None
    if dataset is not None and G.c_dim and dataset.labels is not None:
        labels = np.eye(G.c_dim, dtype=np.float32)[dataset.labels]
    results = {}
    needs_features = [m for m in metrics if m in FEATURE_METRICS]
    if needs_features and dataset is None:
        raise ValueError(f"Expected a dataset (--data) for {needs_features}. Received: None")
    inception, vgg16 = _networks(metrics, inception, vgg16)
    features = {}

    def feature_pair(network, real_num):
        if network.name not in features:
            reals = fid.real_features(dataset, network, real_num, cache_dir=cache_dir,
                                      verbose=verbose)
            fakes = fid.generated_features(G, network, num, batch_size=batch_size, seed=seed,
                                           labels=labels, verbose=verbose)
            features[network.name] = reals, fakes
        return features[network.name]

    for name in metrics:
        start = time.time()
        if name in EQUIVARIANCE_METRICS:
            values = {name: equivariance.sampled_equivariance(G, name, num=num, seed=seed,
                                                              labels=labels)}
        elif name == "fid50k_full":
            values = {name: fid.fid_from_features(*feature_pair(inception, None))}
        elif name == "kid50k_full":
            values = {name: fid.kernel_inception_distance(*feature_pair(inception, None),
                                                          seed=seed)}
        else:
            precision, recall = fid.precision_recall(*feature_pair(vgg16, num))
            values = {f"{name}_precision": precision, f"{name}_recall": recall}
        results.update(values)
        if verbose:
            for key, value in values.items():
                print(f"{key} {value:.4f} ({time.time() - start:.1f} s, num={num})", flush=True)
    return results
