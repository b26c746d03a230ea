"""The equivariance image operators against the reference's outputs (golden `CASE_eqops.npz`).

numpy only, so the result cannot depend on the backend; it runs under each
backend's CI job like the rest.
"""

import numpy as np
import pytest

from keras_afgan.metrics import equivariance_ops as E
from tests.conftest import GOLDEN_DIR
from tests.testing import assert_close


@pytest.fixture
def eqops(case):
    with np.load(GOLDEN_DIR / f"{case.name}_eqops.npz") as data:
        return {k: data[k] for k in data.files}


def _nhwc(x):
    return x.transpose(0, 2, 3, 1)


def test_translations_match_the_reference(case, eqops):
    eq = case.meta["equivariance"]
    orig = case.nhwc("out/eq_orig")
    moved, mask = E.translate_integer(orig, *eq["t_int"])
    assert_close(moved, _nhwc(eqops["int_ref"]), atol=1e-7, what="integer translation")
    assert_close(mask, _nhwc(eqops["int_mask"]), what="integer mask")
    moved, mask = E.translate_fractional(orig, *eq["t_frac"])
    assert_close(moved, _nhwc(eqops["frac_ref"]), atol=1e-6, what="fractional translation")
    assert_close(mask, _nhwc(eqops["frac_mask"]), what="fractional mask")


def test_filters_and_rotations_match_the_reference(case, eqops):
    angle = case.meta["equivariance"]["angle"]
    assert_close(E.affine_filter(E.rotation_matrix(angle), 4), eqops["rot_filter"], atol=2e-7,
                 what="rotation filter")
    assert_close(E.affine_filter(E.rotation_matrix(-angle), 1), eqops["pseudo_filter"],
                 atol=1e-6, what="pseudo-rotation filter")
    rotated, mask = E.rotate(case.nhwc("out/eq_orig"), angle)
    assert_close(rotated, _nhwc(eqops["rot_ref"]), atol=1e-5, what="rotation")
    assert_close(mask, _nhwc(eqops["rot_mask"]), what="rotation mask")
    pseudo, mask = E.pseudo_rotate(case.nhwc("out/eq_img_rot"), angle)
    assert_close(pseudo, _nhwc(eqops["pseudo"]), atol=1e-6, what="pseudo-rotation")
    assert_close(mask, _nhwc(eqops["pseudo_mask"]), what="pseudo-rotation mask")


def test_psnr_of_the_golden_images_matches_the_reference(case, eqops):
    eq = case.meta["equivariance"]
    mask = eqops["rot_mask"] * eqops["pseudo_mask"]
    assert E.masked_psnr(case.arrays["out/eq_img_t_int"], eqops["int_ref"],
                         eqops["int_mask"]) == pytest.approx(eq["psnr_t_int"], abs=1e-5)
    assert E.masked_psnr(case.arrays["out/eq_img_t_frac"], eqops["frac_ref"],
                         eqops["frac_mask"]) == pytest.approx(eq["psnr_t_frac"], abs=1e-5)
    assert E.masked_psnr(eqops["pseudo"], eqops["rot_ref"], mask) == pytest.approx(
        eq["psnr_rot"], abs=1e-5)


def test_operators_against_independent_forms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 12, 12, 3))
    # Integer shift = np.roll with the wrapped-in part zeroed.
    moved, mask = E.translate_integer(x, 3 / 12, -2 / 12)
    rolled = np.roll(x, (-2, 3), axis=(1, 2))
    rolled[:, -2:] = 0
    rolled[:, :, :3] = 0
    np.testing.assert_allclose(moved, rolled)
    assert mask.sum() == 2 * 3 * 10 * 9
    # A whole-pixel fractional shift is the integer shift (Lanczos taps are [0, 0, 1, 0, ...]).
    np.testing.assert_allclose(E.lanczos_taps(0.0), [0, 0, 1, 0, 0, 0], atol=1e-12)
    frac, frac_mask = E.translate_fractional(x, 3 / 12, -2 / 12)
    np.testing.assert_allclose(frac * frac_mask, moved * frac_mask, atol=1e-12)
    # Each polyphase component of a filter sums to 1 / up^2; rotating by 0 keeps the
    # image inside the valid mask up to the filters' band limit.
    f = E.affine_filter(E.rotation_matrix(0.3), 4)
    padded = np.pad(f, [[0, 1], [0, 1]])
    for p in range(4):
        for q in range(4):
            assert padded[p::4, q::4].sum() == pytest.approx(1 / 16)
    smooth = np.cos(2 * np.pi * np.arange(32) / 16)[None, :, None, None] * np.ones((1, 32, 32, 1))
    smooth = np.transpose(smooth, (0, 2, 1, 3))
    rotated, rot_mask = E.rotate(smooth, 0.0)
    assert np.abs((rotated - smooth) * rot_mask).max() < 0.05
    assert rot_mask.sum() > 0
