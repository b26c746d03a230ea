"""FID, KID and precision/recall from Keras InceptionV3 pool features.

The features are the 2048-d average-pool output of `keras.applications.InceptionV3`
on images resized to 299x299 (bilinear) and scaled to [-1, 1]. The weights
come from a local file (`weights_path`): nothing is downloaded at run time.
Numbers are comparable between runs that use the same weights file; they
are not the reference's FID (which uses a TF1 Inception graph of its own).

- `frechet_distance`: `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`,
  the matrix square root taken by symmetric eigendecomposition (stable for
  rank-deficient covariances).
- `kernel_inception_distance`: unbiased MMD^2 with the cubic polynomial
  kernel `(x . y / d + 1)^3`, averaged over random subsets.
- `precision_recall`: k-NN manifold estimates (Kynkaanniemi et al. 2019).
"""

import os

import numpy as np

from keras_afgan.images import from_uint8
from keras_afgan.images import to_uint8_array

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
KERAS_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")


def _check_features(name, features):
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"Expected {name} of shape [N >= 2, D]. Received shape: {features.shape}")
    return features


def feature_statistics(features):
    """Mean `[D]` and covariance `[D, D]` (float64) of features `[N, D]`."""
    features = _check_features("features", features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """The Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return float(np.sum(np.square(mu1 - mu2)) + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * trace_sqrt)


def fid_from_features(features1, features2):
    """FID between two feature sets `[N, D]`, `[M, D]`."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def kernel_inception_distance(features1, features2, num_subsets=100, max_subset_size=1000,
                              seed=0):
    """KID: the mean unbiased MMD^2 over `num_subsets` random subsets (cubic polynomial kernel)."""
    x = _check_features("features1", features1)
    y = _check_features("features2", features2)
    d = x.shape[1]
    m = min(len(x), len(y), max_subset_size)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                  - 2 * kxy.mean())
    return float(total / num_subsets)


def _knn_radii(features, k):
    distances = np.sqrt(np.maximum(_squared_distances(features, features), 0))
    return np.sort(distances, axis=1)[:, k]  # index 0 is the point itself


def _squared_distances(a, b):
    return (np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2 * a @ b.T)


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (k-NN manifolds, k = 3)."""
    real = _check_features("real_features", real_features)
    fake = _check_features("fake_features", fake_features)

    def coverage(manifold, probes):
        radii = _knn_radii(manifold, k)
        distances = np.sqrt(np.maximum(_squared_distances(probes, manifold), 0))
        return float(np.mean(np.any(distances <= radii[None, :], axis=1)))

    return coverage(real, fake), coverage(fake, real)


class InceptionFeatures:
    """InceptionV3 pool features `[N, 2048]` of NHWC images, weights from a local file.

    Args:
        weights_path: Keras InceptionV3 weights without the top
            (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a
            `.weights.h5` written by `save_weights`); None reads
            `$KERAS_AFGAN_INCEPTION`.
        batch_size: images per Inception call.
    """

    def __init__(self, weights_path=None, batch_size=32):
        import keras

        weights_path = weights_path or os.environ.get("KERAS_AFGAN_INCEPTION")
        if not weights_path or not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"InceptionV3 weights not found: {weights_path!r}. FID/KID need a local copy "
                f"(no downloads at run time): fetch {KERAS_WEIGHTS_URL} once on a machine "
                "with internet access and pass its path (--inception=PATH).")
        self.weights_path = weights_path
        self.batch_size = int(batch_size)
        self.model = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
        self.model.load_weights(weights_path)

    def __call__(self, images):
        """Features of `images` `[N, H, W, 3]`: uint8 in [0, 255] or floats in [-1, 1]."""
        from keras import ops

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"Expected images of shape [N, H, W, 3] (or 1 channel). "
                             f"Received shape: {images.shape}")
        if images.dtype != np.uint8:
            # Generated images go through uint8 like the dataset's (as saved PNGs would).
            images = to_uint8_array(images)
        images = from_uint8(images)
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        features = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            n = len(batch)
            # Fixed batch shape: the compiled predict function is traced once.
            batch = np.pad(batch, [[0, self.batch_size - n], [0, 0], [0, 0], [0, 0]])
            x = ops.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), interpolation="bilinear")
            features.append(np.asarray(self.model.predict_on_batch(x))[:n])
        return np.concatenate(features).astype(np.float64)


def generated_features(G, inception, num, batch_size=16, seed=0, labels=None,
                       truncation_psi=1.0):
    """Inception features `[num, 2048]` of G's images (see `models.sampling.generated_batches`)."""
    from keras_afgan.models.sampling import generated_batches

    return np.concatenate([inception(images) for images in generated_batches(
        G, num, batch_size, seed, truncation_psi, labels)])


def real_features(images, inception, num=None):
    """Inception features of dataset images `[N, R, R, C]` uint8 (the first `num`; all by default)."""
    images = np.asarray(images)
    return inception(images if num is None else images[:int(num)])
