"""FID and KID from Keras InceptionV3 pool features; precision/recall from VGG16.

FID and KID use the 2048-d average-pool output of
`keras.applications.InceptionV3` on images resized to 299x299 (bilinear)
and scaled to [-1, 1]; precision/recall, as the reference, the 4096-d `fc2`
output of `keras.applications.VGG16` at 224x224. The weights come from
local files: nothing is downloaded at run time. Numbers are comparable
between runs that use the same weights files; they are not the reference's
FID (which uses a TF1 Inception graph of its own).

Everything streams: features are computed batch by batch into one
preallocated float32 array, statistics and distances are accumulated over
chunks of rows, and real-image features are cached on disk (`real_features`).

- `frechet_distance`: `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`,
  the matrix square root taken by symmetric eigendecomposition (stable for
  rank-deficient covariances).
- `kernel_inception_distance`: unbiased MMD^2 with the cubic polynomial
  kernel `(x . y / d + 1)^3`, averaged over random subsets.
- `precision_recall`: k-NN manifold estimates (Kynkaanniemi et al. 2019).
"""

import hashlib
import json
import os
import time

import numpy as np

from keras_afgan.images import to_uint8_array

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
KERAS_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
VGG16_SIZE = 224
VGG16_FEATURE_DIM = 4096
VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5")


def _check_features(name, features):
    features = np.asarray(features)  # float32 stays float32: math runs on chunks
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"Expected {name} of shape [N >= 2, D]. Received shape: {features.shape}")
    return features


def feature_statistics(features, chunk_rows=1024):
    """Mean `[D]` and covariance `[D, D]` (float64, `ddof=1`) of features `[N, D]`.

    Accumulated in float64 over chunks of rows into one `[D, D]` sum (plus
    one product buffer), so a float32 feature set is never copied whole and
    the memory beyond the features is two `[D, D]` float64 arrays and a chunk.
    """
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"Expected features of shape [N >= 2, D]. "
                         f"Received shape: {features.shape}")
    n, d = features.shape
    total, outer, product = np.zeros(d), np.zeros((d, d)), np.empty((d, d))
    for start in range(0, n, chunk_rows):
        chunk = features[start:start + chunk_rows].astype(np.float64)
        total += chunk.sum(axis=0)
        outer += np.dot(chunk.T, chunk, out=product)
    mean = total / n
    np.multiply(mean[:, None], mean[None, :] * n, out=product)
    outer -= product
    outer /= n - 1
    return mean, outer


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
        a = x[rng.choice(len(x), m, replace=False)].astype(np.float64)
        b = y[rng.choice(len(y), m, replace=False)].astype(np.float64)
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                  - 2 * kxy.mean())
    return float(total / num_subsets)


DISTANCE_CHUNK = 2**24  # float64 distances held at once by precision/recall (128 MB)


def _distance_rows(a, b):
    """Yields `(start, d)`: Euclidean distances `d` `[rows, M]` from chunks of
    rows of `a` `[N, D]` to all of `b` `[M, D]`, at most `DISTANCE_CHUNK`
    values at a time."""
    b = np.asarray(b, np.float64)
    b_norms = np.sum(b * b, axis=1)
    rows = max(1, DISTANCE_CHUNK // max(len(b), 1))
    for start in range(0, len(a), rows):
        chunk = np.asarray(a[start:start + rows], np.float64)
        squared = np.sum(chunk * chunk, axis=1)[:, None] + b_norms[None, :] - 2 * chunk @ b.T
        yield start, np.sqrt(np.maximum(squared, 0))


def _knn_radii(features, k):
    """Distance from each feature to its k-th nearest other feature."""
    radii = np.empty(len(features))
    for start, distances in _distance_rows(features, features):
        # Column 0 of the sorted row is the point itself.
        radii[start:start + len(distances)] = np.partition(distances, k, axis=1)[:, k]
    return radii


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (k-NN manifolds, k = 3), Kynkaanniemi et al. 2019.

    Precision: the fraction of fakes within the k-NN radius of some real;
    recall: of reals within that of some fake. Distances are computed in
    chunks of rows (never an N x M matrix whole).
    """
    real = _check_features("real_features", real_features)
    fake = _check_features("fake_features", fake_features)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"Expected more than k={k} real and fake features. "
                         f"Received: {len(real)} and {len(fake)}")

    def coverage(manifold, probes):
        radii = _knn_radii(manifold, k)
        covered = np.zeros(len(probes), bool)
        for start, distances in _distance_rows(probes, manifold):
            covered[start:start + len(distances)] = np.any(distances <= radii[None, :], axis=1)
        return float(np.mean(covered))

    return coverage(real, fake), coverage(fake, real)


class FeatureNetwork:
    """Features `[N, D]` (float32) of NHWC images, batch by batch, from a
    Keras application whose weights come from a local file.

    Subclasses set `name`, `input_size`, `feature_dim`, `env_var`, `url`,
    and build the model (`_build`) and its input scaling (`_scale`).

    Args:
        weights_path: the weights file; None reads the subclass's `env_var`.
        batch_size: images per network call.
    """

    name = input_size = feature_dim = env_var = url = flag = None

    def __init__(self, weights_path=None, batch_size=32):
        weights_path = weights_path or os.environ.get(self.env_var)
        if not weights_path or not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"{self.name} weights not found: {weights_path!r}. The metrics need a local copy "
                f"(no downloads at run time): fetch {self.url} once on a machine with internet "
                f"access and pass its path ({self.flag}=PATH or ${self.env_var}).")
        self.weights_path = weights_path
        self.batch_size = int(batch_size)
        self.model = self._build()
        self._load(weights_path)
        self._file_hash = None

    def _build(self):
        raise NotImplementedError

    def _load(self, weights_path):
        self.model.load_weights(weights_path)

    def _scale(self, batch):
        """float32 `[n, H, W, 3]` in [0, 255] -> the network's input."""
        raise NotImplementedError

    def file_hash(self):
        """SHA-256 of the weights file (part of the cache key of real features)."""
        if self._file_hash is None:
            digest = hashlib.sha256()
            with open(self.weights_path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    digest.update(block)
            self._file_hash = digest.hexdigest()
        return self._file_hash

    def __call__(self, images):
        """Features float32 `[N, D]` of `images` `[N, H, W, C]` (C 1 or 3):
        uint8 in [0, 255] or floats in [-1, 1]. Converted one batch at a time."""
        from keras import ops

        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"Expected images of shape [N, H, W, 3] (or 1 channel). "
                             f"Received shape: {images.shape}")
        out = np.empty((len(images), self.feature_dim), np.float32)
        size = (self.input_size, self.input_size)
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            n = len(batch)
            if batch.dtype != np.uint8:
                # Generated images go through uint8 like the dataset's (as saved PNGs would).
                batch = to_uint8_array(batch)
            batch = batch.astype(np.float32)
            if batch.shape[-1] == 1:
                batch = np.repeat(batch, 3, axis=-1)
            # Fixed batch shape: the compiled predict function is traced once.
            batch = np.pad(batch, [[0, self.batch_size - n], [0, 0], [0, 0], [0, 0]])
            x = self._scale(ops.image.resize(batch, size, interpolation="bilinear"))
            out[start:start + n] = np.asarray(self.model.predict_on_batch(x))[:n]
        return out


class InceptionFeatures(FeatureNetwork):
    """InceptionV3 pool features `[N, 2048]` (FID, KID): images resized to
    299x299 (bilinear) and scaled to [-1, 1].

    Args:
        weights_path: Keras InceptionV3 weights without the top
            (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a
            `.weights.h5` written by `save_weights`); None reads
            `$KERAS_AFGAN_INCEPTION`.
        batch_size: images per Inception call.
    """

    name, input_size, feature_dim = "InceptionV3", INCEPTION_SIZE, FEATURE_DIM
    env_var, url, flag = "KERAS_AFGAN_INCEPTION", KERAS_WEIGHTS_URL, "--inception"

    def _build(self):
        import keras

        return keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))

    def _scale(self, batch):
        return batch / 127.5 - 1.0


class VGG16Features(FeatureNetwork):
    """VGG16 `fc2` features `[N, 4096]` (precision/recall, as the reference):
    images resized to 224x224 (bilinear), then Keras's VGG16 preprocessing
    (RGB to BGR, ImageNet channel means subtracted).

    Args:
        weights_path: Keras VGG16 weights with the top
            (`vgg16_weights_tf_dim_ordering_tf_kernels.h5`, 528 MB, or a
            `.weights.h5` written by `save_weights`); None reads
            `$KERAS_AFGAN_VGG16`.
        batch_size: images per VGG16 call.
    """

    name, input_size, feature_dim = "VGG16", VGG16_SIZE, VGG16_FEATURE_DIM
    env_var, url, flag = "KERAS_AFGAN_VGG16", VGG16_WEIGHTS_URL, "--vgg16"

    def _build(self):
        import keras

        self._full = keras.applications.VGG16(include_top=True, weights=None,
                                              input_shape=(VGG16_SIZE, VGG16_SIZE, 3))
        return keras.Model(self._full.input, self._full.get_layer("fc2").output,
                           name="vgg16_fc2")

    def _load(self, weights_path):
        # The file holds the whole network ("predictions" too): load it there.
        self._full.load_weights(weights_path)

    def _scale(self, batch):
        import keras

        return keras.applications.vgg16.preprocess_input(batch)


def features_of_batches(network, batches, num, verbose=False, what="images"):
    """Features float32 `[num, D]` of an iterable of image batches, filled
    into one preallocated array (the only memory that grows with `num`)."""
    out = np.empty((num, network.feature_dim), np.float32)
    done, start, last = 0, time.time(), 0.0
    for images in batches:
        n = min(len(images), num - done)
        out[done:done + n] = network(images[:n])
        done += n
        if verbose and (time.time() - last > 10 or done == num):
            last = time.time()
            print(f"  {network.name} features of {what}: {done}/{num} "
                  f"({done / max(last - start, 1e-9):.1f} img/s)", flush=True)
        if done == num:
            break
    if done != num:
        raise ValueError(f"Expected {num} images for features. Received: {done}")
    return out


def generated_features(G, network, num, batch_size=16, seed=0, labels=None,
                       truncation_psi=1.0, verbose=False):
    """Features `[num, D]` of G's images (see `models.sampling.generated_batches`)."""
    from keras_afgan.models.sampling import generated_batches

    return features_of_batches(network, generated_batches(
        G, num, batch_size, seed, truncation_psi, labels), num, verbose, "generated images")


def default_cache_dir():
    """Where real-image features are cached: `$KERAS_AFGAN_CACHE/metrics`, or
    `~/.cache/keras_afgan/metrics`."""
    root = os.environ.get("KERAS_AFGAN_CACHE") or os.path.join("~", ".cache", "keras_afgan")
    return os.path.join(os.path.expanduser(root), "metrics")


def real_features(dataset, network, num=None, batch_size=64, cache_dir=None, verbose=False):
    """Features `[n, D]` of the first `n = min(num, len(dataset))` images of
    `dataset`, read batch by batch, cached on disk.

    The cache key is the dataset's fingerprint (its files' paths, sizes and
    modification times, resolution, channels and image count; see
    `StreamingDataset.fingerprint`), `n` and the network's weights-file hash:
    a second call with the same data reads the cache, not the dataset. An
    in-memory `ImageDataset` (or an array) is not cached.

    Args:
        dataset: a `StreamingDataset`, an `ImageDataset`, or uint8 images `[N, R, R, C]`.
        network: a `FeatureNetwork`.
        num: at most this many images (None: all).
        batch_size: images read per batch.
        cache_dir: the cache folder (default `default_cache_dir()`); False disables it.
        verbose: progress output.
    """
    if isinstance(dataset, np.ndarray):
        from keras_afgan.data.sources import ImageDataset

        dataset = ImageDataset("array", dataset)
    n = len(dataset) if num is None else min(int(num), len(dataset))
    path = None
    fingerprint = getattr(dataset, "fingerprint", None)
    if cache_dir is not False and fingerprint is not None:
        key = hashlib.sha256(json.dumps(
            [fingerprint(), n, network.name, network.file_hash()]).encode()).hexdigest()[:32]
        path = os.path.join(cache_dir or default_cache_dir(), f"{network.name}-{key}.npy")
        if os.path.exists(path):
            if verbose:
                print(f"  {network.name} features of {dataset.name}: cached {path}", flush=True)
            return np.load(path)
    batches = (dataset.read(np.arange(start, min(start + batch_size, n)))
               for start in range(0, n, batch_size))
    features = features_of_batches(network, batches, n, verbose, f"reals of {dataset.name}")
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.partial-{os.getpid()}.npy"
        np.save(partial, features)
        os.replace(partial, path)
    return features
