"""Config B (preset `config-b`): StyleGAN2 with StyleGAN3's Fourier features in
place of the 4x4 constant. The paper never released it; docs/design.md §8.6
states what keras_afgan builds, and these tests check exactly that."""

import keras
import numpy as np
import pytest

from keras_afgan.layers import SynthesisInput
from keras_afgan.metrics.equivariance import eqt_psnr
from keras_afgan.models import StyleGAN2Generator
from keras_afgan.models.presets import generator_from_preset
from keras_afgan.models.presets import preset_of
from tests.testing import assert_close
from tests.testing import to_numpy

SMALL = dict(z_dim=8, w_dim=8, channel_base=128, channel_max=8, mapping_layers=2, seed=3)


def _pair():
    keras.utils.set_random_seed(0)
    b = generator_from_preset("config-b", 16, name="g", **SMALL)
    a = generator_from_preset("stylegan2", 16, name="g", **SMALL)
    by_path = {v.path: v for v in a.weights}
    for v in b.weights:  # share every weight the two have in common
        if v.path in by_path:
            by_path[v.path].assign(v)
    return a, b


def test_structure():
    a, b = _pair()
    assert preset_of(b) == "config-b" and preset_of(a) == "stylegan2"
    assert b.has_input_transform and not a.has_input_transform
    inp = b.synthesis.input
    assert isinstance(inp, SynthesisInput)
    c4 = b.synthesis.blocks[0].out_channels
    assert (inp.channels, inp.size, inp.sampling_rate, inp.bandwidth) == (c4, 4, 4.0, 1.0)
    assert b.num_ws == a.num_ws
    count = lambda g: sum(int(np.prod(w.shape)) for w in g.trainable_weights)  # noqa: E731
    # The constant [4, 4, C4] gives way to the features' mixing matrix and the affine.
    assert count(b) - count(a) == c4 * c4 + (8 * 4 + 4) - 16 * c4
    assert a.synthesis.input is None


def test_forward_is_stylegan2_with_the_features_as_its_constant():
    """For one sample: config B's image equals config A's with its constant set
    to the Fourier features that sample's ws[:, 0] gives (an independent
    composition of layers tested elsewhere)."""
    a, b = _pair()
    ws = np.random.default_rng(0).standard_normal((1, b.num_ws, 8)).astype("float32")
    features = to_numpy(b.synthesis.input(ws[:, 0]))  # [1, 4, 4, C4]
    a.synthesis.blocks[0].const.assign(features[0])
    assert_close(b.synthesis(ws, noise_mode="const"), a.synthesis(ws, noise_mode="const"),
                 atol=1e-5, what="config B vs A with the features as constant")


def test_transforms_move_the_content_and_eq_metrics_apply():
    a, b = _pair()
    ws = np.random.default_rng(1).standard_normal((2, b.num_ws, 8)).astype("float32")
    shift = np.array([[[1, 0, 0.25], [0, 1, 0], [0, 0, 1]]] * 2, np.float32)
    moved = to_numpy(b.synthesis(ws, transform=shift, noise_mode="const"))
    assert np.abs(moved - to_numpy(b.synthesis(ws, noise_mode="const"))).max() > 1e-3
    z = np.random.default_rng(2).standard_normal((2, 8)).astype("float32")
    assert np.isfinite(eqt_psnr(b, z, tx=0.25, ty=0.0))
    with pytest.raises(ValueError, match="no input transform"):
        eqt_psnr(a, z, tx=0.25)
    with pytest.raises(ValueError, match="Expected transform=None"):
        a.synthesis(ws, transform=shift)


def test_keras_round_trip(tmp_path):
    _, b = _pair()
    z = np.random.default_rng(3).standard_normal((2, 8)).astype("float32")
    expected = to_numpy(b(z, noise_mode="const"))
    b.save(tmp_path / "b.keras")
    loaded = keras.saving.load_model(tmp_path / "b.keras")
    assert isinstance(loaded, StyleGAN2Generator) and loaded.synthesis.input_kind == "fourier"
    assert_close(loaded(z, noise_mode="const"), expected, atol=1e-6, what="config B .keras")


def test_serving_signatures_have_the_transform():
    from keras_afgan.export.saved_model import serving_endpoints

    a, b = _pair()
    names = lambda g: [s.name for s in serving_endpoints(g)["synthesis"][1]]  # noqa: E731
    assert names(b) == ["ws", "translate", "rotate"]
    assert names(a) == ["ws"]
