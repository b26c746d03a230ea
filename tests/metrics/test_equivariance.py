"""EQ-T, EQ-T_frac, EQ-R of a generator, against the reference's golden images and PSNRs."""

import numpy as np
import pytest

from keras_afgan.metrics import eqr_psnr
from keras_afgan.metrics import equivariance_ops as E
from keras_afgan.metrics import eqt_psnr
from keras_afgan.metrics import sampled_equivariance
from keras_afgan.metrics import transformed_synthesis
from keras_afgan.metrics.equivariance import MAX_TRANSLATE
from keras_afgan.models.sampling import random_latents
from tests.testing import assert_close


@pytest.fixture
def G(case):
    return case.generator()


def _inputs(case):
    c = case.arrays["in/c"]
    return case.arrays["in/z"], (c if c.shape[1] else None)


def test_transformed_syntheses_equal_the_golden_images(case, G):
    eq = case.meta["equivariance"]
    ws = case.arrays["out/ws_psi1"]
    for key, kwargs in (("out/eq_orig", {}), ("out/eq_img_t_int", {"translate": eq["t_int"]}),
                        ("out/eq_img_t_frac", {"translate": eq["t_frac"]}),
                        ("out/eq_img_rot", {"angle": eq["angle"]})):
        # ~10x the largest error measured (6.1e-7).
        assert_close(transformed_synthesis(G, ws, **kwargs), case.nhwc(key), atol=1e-5, what=key)


def test_psnrs_match_the_reference(case, G):
    eq = case.meta["equivariance"]
    z, c = _inputs(case)
    # ~10x the largest difference measured (0.0016 dB).
    assert eqt_psnr(G, z, c, *eq["t_int"]) == pytest.approx(eq["psnr_t_int"], abs=0.02)
    assert eqt_psnr(G, z, c, *eq["t_frac"], integer=False) == pytest.approx(
        eq["psnr_t_frac"], abs=0.02)
    assert eqr_psnr(G, z, c, eq["angle"]) == pytest.approx(eq["psnr_rot"], abs=0.02)


def test_stored_transform_does_not_change_the_metric(case, G):
    # r32c stores a rotation + translation; the metric undoes it.
    eq = case.meta["equivariance"]
    z, c = _inputs(case)
    before = eqt_psnr(G, z, c, *eq["t_frac"], integer=False)
    G.synthesis.input.transform.assign(np.array(
        [[0.6, 0.8, 0.2], [-0.8, 0.6, -0.1], [0, 0, 1]], np.float32))
    assert eqt_psnr(G, z, c, *eq["t_frac"], integer=False) == pytest.approx(before, abs=1e-3)


def test_integer_eqt_rounds_the_translation_to_whole_pixels(case, G):
    z, c = _inputs(case)
    eq = case.meta["equivariance"]
    r = G.img_resolution
    off_grid = [t + 0.3 / r for t in eq["t_int"]]
    assert eqt_psnr(G, z, c, *off_grid) == pytest.approx(eqt_psnr(G, z, c, *eq["t_int"]), abs=1e-6)


def test_sampled_metric_pools_its_batches(case, G):
    # Two batches of 2, drawn as documented: z (then c), then the transform, per batch.
    seed, errors, counts = 3, 0.0, 0.0
    rng = np.random.default_rng(seed)
    for _ in range(2):
        z, c = random_latents(G, 2, rng)
        tx, ty = rng.uniform(-MAX_TRANSLATE, MAX_TRANSLATE, size=2)
        single = eqt_psnr(G, z, c, tx, ty, integer=False)
        # psnr -> mse needs the batch's mask size.
        _, mask = E.translate_fractional(np.zeros((2, G.img_resolution, G.img_resolution,
                                                   G.img_channels)), tx, ty)
        mse = 10 ** ((20 * np.log10(2) - single) / 10)
        errors += mse * mask.sum()
        counts += mask.sum()
    pooled = 20 * np.log10(2) - 10 * np.log10(errors / counts)
    assert sampled_equivariance(G, "eqt50k_frac", num=4, batch_size=2, seed=seed) == \
        pytest.approx(pooled, abs=1e-6)


def test_bad_arguments_fail_clearly(case, G):
    z, c = _inputs(case)
    with pytest.raises(ValueError, match=r"Expected z of shape \[N, "):
        eqt_psnr(G, z[:, :3], c, 0.1, 0)
    with pytest.raises(ValueError, match="Expected metric in"):
        sampled_equivariance(G, "eqt_int", num=4)
    if G.c_dim:
        with pytest.raises(ValueError, match="conditional"):
            eqr_psnr(G, z, None, 0.5)
