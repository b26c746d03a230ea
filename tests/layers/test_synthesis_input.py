"""Per-sample input transforms: `content_transform_matrices` and `SynthesisInput(w, transform)`."""

import numpy as np
import pytest

from keras_afgan.layers.synthesis_input import SynthesisInput
from keras_afgan.models.transforms import content_transform_matrices
from keras_afgan.models.transforms import make_transform
from tests.testing import assert_close
from tests.testing import to_numpy

TRANSLATE = np.array([[0.0, 0.0], [0.3, -0.1], [-0.25, 0.5]], np.float32)
ANGLES = np.array([0.0, 30.0, -123.0], np.float32)


def test_content_transform_matrices_invert_make_transform():
    expected = np.stack([np.linalg.inv(make_transform(t, a)) for t, a in zip(TRANSLATE, ANGLES)])
    assert_close(content_transform_matrices(TRANSLATE, ANGLES), expected, atol=1e-6)


def _layer():
    layer = SynthesisInput(w_dim=4, channels=8, size=12, sampling_rate=8, bandwidth=2, seed=0)
    layer.build()
    rng = np.random.default_rng(0)
    layer.affine.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.3
                              for w in layer.affine.get_weights()])
    stored = make_transform((0.1, 0.2), 40).astype(np.float32)
    layer.transform.assign(stored)
    return layer, rng.standard_normal((3, 4)).astype("float32"), stored


def test_per_sample_transform_composes_after_the_stored_one():
    layer, w, stored = _layer()
    per_sample = to_numpy(content_transform_matrices(TRANSLATE, ANGLES))
    moved = to_numpy(layer(w, transform=per_sample))
    for i in range(3):
        layer.transform.assign(stored @ per_sample[i])
        assert_close(moved[i], to_numpy(layer(w[i:i + 1]))[0], atol=1e-5, what=f"sample {i}")
    layer.transform.assign(stored)
    assert_close(moved[0], to_numpy(layer(w[:1]))[0], atol=1e-5, what="identity per-sample")
    assert np.abs(moved[1] - to_numpy(layer(w[1:2]))[0]).max() > 1e-2


def test_per_sample_transform_must_be_n_by_3_by_3():
    layer, w, _ = _layer()
    with pytest.raises(ValueError, match=r"Expected transform of shape \[N, 3, 3\]. "
                       r"Received: shape=\(3, 2, 3\)"):
        layer(w, transform=np.zeros((3, 2, 3), np.float32))
