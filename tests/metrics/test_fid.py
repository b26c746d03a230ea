"""FID, KID, precision/recall: against scipy / slow forms, and across backends.

The Inception weights in these tests are a randomly initialised InceptionV3
saved to a file: what matters here is that the same weights file gives the
same numbers on every backend (no ImageNet weights are downloadable here).
"""

import json

import keras
import numpy as np
import pytest
import scipy.linalg

from keras_afgan.metrics import InceptionFeatures
from keras_afgan.metrics import fid
from keras_afgan.metrics import fid_from_features
from keras_afgan.metrics import frechet_distance
from keras_afgan.metrics import kernel_inception_distance
from keras_afgan.metrics import precision_recall
from tests.testing import run_python


def _scipy_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)


def test_frechet_distance_equals_the_scipy_formula():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12))
    b = rng.standard_normal((300, 12)) * 1.5 + 0.3
    assert fid_from_features(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-8)
    assert frechet_distance(np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3)) == \
        pytest.approx(3 + 3 + 12 - 2 * 6)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_perturbation():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((64, 512))  # rank-deficient covariance, as with few images
    assert abs(fid_from_features(features, features)) < 1e-6 * np.trace(np.cov(features.T))
    fids = [fid_from_features(features, features + s * rng.standard_normal(features.shape))
            for s in (0.1, 0.3, 1.0)]
    assert 0 < fids[0] < fids[1] < fids[2]


def _slow_kid(x, y):
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_the_unbiased_mmd_and_grows():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 8))
    y = rng.standard_normal((20, 8)) + 0.5
    # One subset of everything: exactly the unbiased MMD^2.
    assert kernel_inception_distance(x, y, num_subsets=1) == pytest.approx(_slow_kid(x, y))
    same = kernel_inception_distance(x, x, num_subsets=1)
    assert abs(same) < 1e-12 or same < kernel_inception_distance(x, y, num_subsets=1) / 100
    assert kernel_inception_distance(x, x + 0.1, num_subsets=1) < \
        kernel_inception_distance(x, x + 1.0, num_subsets=1)


def test_precision_recall_extremes():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((50, 4))
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    precision, recall = precision_recall(real, rng.standard_normal((50, 4)) * 0.2)
    assert precision > 0.8 and recall < 0.6  # fakes collapsed near the mode


def _slow_precision_recall(real, fake, k=3):
    """Brute force with scipy's cdist: the k-th neighbour radius of each
    manifold point, then per probe whether any ball holds it."""
    from scipy.spatial.distance import cdist

    def coverage(manifold, probes):
        radii = np.sort(cdist(manifold, manifold), axis=1)[:, k]
        return np.mean([(cdist(p[None], manifold)[0] <= radii).any() for p in probes])

    return coverage(real, fake), coverage(fake, real)


def test_precision_recall_in_chunks_equals_brute_force(monkeypatch):
    rng = np.random.default_rng(5)
    real = rng.standard_normal((120, 6)).astype(np.float32)
    fake = (rng.standard_normal((90, 6)) * 0.8 + 1.0).astype(np.float32)
    expected = _slow_precision_recall(real.astype(np.float64), fake.astype(np.float64))
    assert 0.05 < expected[0] < 0.95 and 0.05 < expected[1] < 0.95  # not a trivial case
    monkeypatch.setattr(fid, "DISTANCE_CHUNK", 7 * 120)  # chunks of 7 rows (and 9 for fakes)
    assert precision_recall(real, fake) == pytest.approx(expected, abs=1e-12)


def test_statistics_in_chunks_equal_numpy():
    rng = np.random.default_rng(6)
    features = (rng.standard_normal((1001, 5)) * 3 + 10).astype(np.float32)
    mean, cov = fid.feature_statistics(features, chunk_rows=64)
    np.testing.assert_allclose(mean, features.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(features.astype(np.float64), rowvar=False),
                               rtol=1e-9, atol=1e-9)


class _MeanColour:
    """A stand-in feature network (the cache test needs no Inception): the
    per-channel mean and standard deviation of each image."""

    name, feature_dim = "MeanColour", 6

    def __init__(self):
        self.calls = 0

    def file_hash(self):
        return "0" * 64

    def __call__(self, images):
        self.calls += 1
        x = np.asarray(images, np.float32)
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def test_real_features_are_cached_and_reused(tmp_path):
    from PIL import Image

    from keras_afgan.data import open_images

    rng = np.random.default_rng(7)
    folder = tmp_path / "reals"
    folder.mkdir()
    arrays = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(10)]
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"{i}.png")
    network, cache = _MeanColour(), tmp_path / "cache"
    first = fid.real_features(open_images(str(folder)), network, batch_size=4, cache_dir=cache)
    np.testing.assert_allclose(first, network(np.stack(arrays)), rtol=1e-6)
    assert len(list(cache.glob("*.npy"))) == 1

    # The second time the dataset is not read at all.
    again = open_images(str(folder))
    again.read = lambda indices: pytest.fail("the cached features were not used")
    np.testing.assert_array_equal(fid.real_features(again, network, cache_dir=cache), first)

    # A changed file (or another count) is another key.
    Image.fromarray(255 - arrays[3]).save(folder / "3.png")
    changed = fid.real_features(open_images(str(folder)), network, cache_dir=cache)
    np.testing.assert_allclose(changed[3], network((255 - arrays[3])[None])[0], rtol=1e-6)
    fewer = fid.real_features(open_images(str(folder)), network, num=4, cache_dir=cache)
    assert fewer.shape == (4, 6) and len(list(cache.glob("*.npy"))) == 3


def test_vgg16_features_are_fc2_of_caffe_preprocessed_images(vgg16_file):
    """Images already 224 px (the resize is then the identity): our features
    equal fc2 of Keras's VGG16 on BGR images minus the ImageNet means."""
    images = np.random.default_rng(8).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    ours = fid.VGG16Features(vgg16_file, batch_size=2)(images)
    full = keras.applications.VGG16(include_top=True, weights=vgg16_file)
    fc2 = keras.Model(full.input, full.get_layer("fc2").output)
    bgr = images[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)
    expected = keras.ops.convert_to_numpy(fc2(bgr))
    assert ours.shape == (3, 4096) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_missing_inception_weights_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="InceptionV3 weights not found.*--inception"):
        InceptionFeatures(str(tmp_path / "nope.h5"))


FEATURES_CODE = """
import json, sys, numpy as np
from keras_afgan.metrics import InceptionFeatures, fid_from_features
data = np.load(sys.argv[1] if len(sys.argv) > 1 else {images!r})
inception = InceptionFeatures({weights!r}, batch_size=8)
a, b = inception(data["a"]), inception(data["b"])
print(json.dumps({{"fid": fid_from_features(a, b), "self": fid_from_features(a, a),
                  "shape": list(a.shape)}}))
"""


@pytest.mark.skipif(keras.config.backend() == "tensorflow",
                    reason="TensorFlow is the other side of this comparison in the JAX and torch "
                           "jobs (a torch process here took ~110 s for the same TF-torch pair)")
def test_fid_agrees_across_backends_with_the_same_weights(inception_file, tmp_path):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    images = str(tmp_path / "images.npz")
    np.savez(images, a=a, b=b)
    code = FEATURES_CODE.format(images=images, weights=inception_file)
    here = keras.config.backend()
    # JAX and torch each against a TensorFlow process: every backend computes
    # FID in one of the two jobs, and no job starts a JAX or torch process
    # (their eager InceptionV3 is the slowest).
    other = "tensorflow"
    theirs = json.loads(run_python(code, other).strip().splitlines()[-1])
    inception = InceptionFeatures(inception_file, batch_size=8)
    features_a, features_b = inception(a), inception(b)
    assert features_a.shape == (8, 2048)
    ours = fid_from_features(features_a, features_b)
    assert ours == pytest.approx(theirs["fid"], rel=1e-3), (here, other)
    # The perturbation shows: FID(a, a) is ~0 beside FID(a, b).
    assert abs(fid_from_features(features_a, features_a)) < 1e-4 * ours
    assert abs(theirs["self"]) < 1e-4 * theirs["fid"]
