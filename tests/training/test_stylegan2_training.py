"""Training StyleGAN2 (config A) with `fit`: style mixing, lazy path-length phase,
its optimizer settings, and a save/restore round trip, on every backend.

The path-length phase's values and gradients are checked against the
reference in tests/models/test_stylegan2.py; here the recipe around it.
"""

import keras
import numpy as np
import pytest

from keras_afgan.models import Discriminator
from keras_afgan.models import StyleGAN2Generator
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training.gan import default_optimizers
from tests.testing import to_numpy

N = 4


def _networks(seed=0):
    keras.utils.set_random_seed(seed)
    G = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=128,
                           channel_max=8, mapping_layers=2, seed=seed)
    D = Discriminator(img_resolution=16, channel_base=128, channel_max=8, mbstd_group_size=2)
    return G, D


def _images(seed):
    return np.random.default_rng(seed).uniform(-1, 1, (N, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_style_mixing_takes_the_tail_from_a_second_latent(prob):
    G, D = _networks()
    gan = AliasFreeGAN(G, D, mixing_prob=prob, seed=3)
    z = np.random.default_rng(1).standard_normal((N, 8)).astype("float32")
    plain = to_numpy(G.mapping(z, None))
    for _ in range(3):
        mixed = to_numpy(gan.mapped_ws(z, None))
        same = np.all(mixed == plain, axis=(0, 2))  # [num_ws]
        if prob == 0:
            assert same.all()
            continue
        cutoff = int(np.argmin(same))
        # A prefix of at least one w from z, then a tail from one other w per sample.
        assert 1 <= cutoff < G.num_ws and same[:cutoff].all() and not same[cutoff:].any()
        np.testing.assert_array_equal(mixed[:, cutoff:], np.repeat(mixed[:, cutoff:cutoff + 1],
                                                                   G.num_ws - cutoff, axis=1))


def test_lazy_path_length_optimizer_settings():
    g_opt, d_opt = default_optimizers(r1_interval=16, g_lr=0.002, d_lr=0.002, g_reg_interval=4)
    assert float(g_opt.learning_rate) == pytest.approx(0.002 * 4 / 5)
    assert g_opt.beta_2 == pytest.approx(0.99 ** (4 / 5))
    assert float(d_opt.learning_rate) == pytest.approx(0.002 * 16 / 17)
    g_plain, _ = default_optimizers(g_lr=0.0025)
    assert float(g_plain.learning_rate) == pytest.approx(0.0025) and g_plain.beta_2 == 0.99


def test_fit_runs_greg_every_interval_and_saves(tmp_path):
    G, D = _networks()
    gan = AliasFreeGAN(G, D, r1_interval=2, mixing_prob=0.9, pl_weight=2.0, g_reg_interval=2,
                       ema_kimg=0.01, seed=5)
    gan.compile()
    means = []
    for step in range(3):
        before = [to_numpy(v) for v in G.trainable_variables]
        logs = gan.fit(_images(step), batch_size=N, epochs=1, shuffle=False, verbose=0).history
        means.append(float(to_numpy(gan.pl_mean)))
        assert all(np.isfinite(v[-1]) for v in logs.values()), logs
        moved = [np.abs(to_numpy(v) - b).max() for v, b in zip(G.trainable_variables, before)]
        assert max(moved) > 0
    # Greg at iterations 0 and 2 (g_reg_interval 2): pl_mean moves there only.
    assert means[0] > 0 and means[1] == means[0] and means[2] != means[1]
    assert "pl_penalty" in logs
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.generator, StyleGAN2Generator)
    assert (restored.mixing_prob, restored.pl_weight, restored.g_reg_interval) == (0.9, 2.0, 2)
    assert float(to_numpy(restored.pl_mean)) == means[-1]
    z = np.random.default_rng(9).standard_normal((2, 8)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(restored.generator_ema(z, noise_mode="const")),
        to_numpy(gan.generator_ema(z, noise_mode="const")), atol=1e-6)
