"""The ADA augmentation pipe against the reference's outputs, its random
draws against their stated distributions, and its gradient."""

import json
import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_afgan.augment import NUM_DRAWS
from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import preset_kwargs
from keras_afgan.augment import filters
from tests.conftest import GOLDEN_DIR
from tests.testing import to_numpy

GEOMETRIC_CASES = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "bgc",
                   "bgcfc")


@pytest.fixture(scope="module")
def golden():
    meta = json.loads((GOLDEN_DIR / "augment.json").read_text())
    return meta, dict(np.load(GOLDEN_DIR / "augment.npz"))


def test_every_golden_case_matches_the_reference(golden):
    """Every transform alone, bgc and bgcfc at four debug percentiles, RGB and
    gray; everything at p = 0. Tolerances ~10x the measured error (geometric
    cases resample: measured up to 6e-6; colour and filter 1e-6)."""
    meta, arrays = golden
    failures, checked = [], 0
    for case, kwargs in meta["cases"].items():
        pipe = AugmentPipe(**kwargs)
        atol = 5e-5 if case in GEOMETRIC_CASES else 1e-5
        for k, q in enumerate(meta["percentiles"]):
            for kind in ("rgb", "gray"):
                key = f"out/{case}/q{k}/{kind}"
                if key not in arrays:
                    continue
                out = to_numpy(pipe(arrays[f"in/{kind}"], debug_percentile=q))
                error = float(np.abs(out - arrays[key]).max())
                checked += 1
                if not error <= atol:
                    failures.append(f"{key}: max error {error:.2e} > {atol:.0e}")
    pipe = AugmentPipe(**preset_kwargs("bgcfnc"), p=0.0)
    error = float(np.abs(to_numpy(pipe(arrays["in/rgb"])) - arrays["out/bgcfnc/p0/rgb"]).max())
    if not error <= 1e-5:
        failures.append(f"bgcfnc p=0: max error {error:.2e}")
    assert checked >= 100
    assert not failures, "\n".join(failures)


def _draws(pipe, n=4000, channels=3):
    return {k: to_numpy(v) for k, v in pipe.parameters(n, channels=channels).items()}


def _assert_rate(fired, probability, what):
    n = fired.size
    rate = float(np.mean(fired))
    bound = 4 * math.sqrt(probability * (1 - probability) / n)
    assert abs(rate - probability) <= bound, f"{what}: rate {rate:.4f}, expected {probability}"


def _assert_moments(values, mean, std, what):
    """Sample mean and std within 4 standard errors of `mean`, `std`."""
    n = values.size
    assert abs(values.mean() - mean) <= 4 * std / math.sqrt(n), f"{what}: mean {values.mean()}"
    assert abs(values.std() - std) <= 4 * std / math.sqrt(2 * n), f"{what}: std {values.std()}"


def test_each_transform_fires_with_probability_p_times_its_multiplier():
    """Drawn by the layer's own seed generator, 4000 images: each transform
    is off (its identity) with probability 1 - p * multiplier (4 sigma)."""
    p = 0.3
    pipe = AugmentPipe(**dict(preset_kwargs("bgcfnc"), scale=0.5, hue=2.0), p=p, seed=1)
    d = _draws(pipe)
    # Discrete draws are the identity half (a quarter) of the time they fire.
    _assert_rate(d["xflip"] == 1, p / 2, "xflip")
    for turns in (1, 2, 3):
        _assert_rate(d["rotate90"] == turns, p / 4, f"rotate90 {turns}")
    _assert_rate(d["lumaflip"] == 1, p / 2, "lumaflip")
    _assert_rate(np.any(d["xint"] != 0, axis=1), p, "xint")
    _assert_rate(d["scale"] != 1, 0.5 * p, "scale (multiplier 0.5)")
    _assert_rate(d["aniso"] != 1, p, "aniso")
    _assert_rate(np.any(d["xfrac"] != 0, axis=1), p, "xfrac")
    # The rotation happens before or after the anisotropic scaling (or both):
    # each with 1 - sqrt(1 - p), so that one of them does with p.
    p_rot = 1 - math.sqrt(1 - p)
    _assert_rate(d["pre_rotate"] != 0, p_rot, "pre-rotation")
    _assert_rate(d["post_rotate"] != 0, p_rot, "post-rotation")
    _assert_rate((d["pre_rotate"] != 0) | (d["post_rotate"] != 0), p, "rotation")
    _assert_rate(d["brightness"] != 0, p, "brightness")
    _assert_rate(d["contrast"] != 1, p, "contrast")
    _assert_rate(d["hue"] != 0, min(2 * p, 1), "hue (multiplier 2)")
    _assert_rate(d["saturation"] != 1, p, "saturation")
    for band in range(4):
        _assert_rate(d["imgfilter"][:, band] != 1, p, f"imgfilter band {band}")
    _assert_rate(d["noise"] != 0, p, "noise")
    _assert_rate(d["cutout"] != 0, p, "cutout")
    # Independent gates: xint and scale fire together with p * p/2.
    _assert_rate(np.any(d["xint"] != 0, axis=1) & (d["scale"] != 1), p * 0.5 * p, "xint & scale")


def test_drawn_parameters_have_the_stated_distributions():
    """With p = 1: log2 scalings normal with their std, angles uniform over
    the full circle, translations uniform (integer) or normal (fractional)."""
    pipe = AugmentPipe(**preset_kwargs("bgcfnc"), p=1.0, seed=2)
    d = _draws(pipe)
    _assert_moments(np.log2(d["scale"]), 0.0, 0.2, "log2 scale")
    _assert_moments(np.log2(d["aniso"]), 0.0, 0.2, "log2 aniso")
    _assert_moments(np.log2(d["contrast"]), 0.0, 0.5, "log2 contrast")
    _assert_moments(np.log2(d["saturation"]), 0.0, 1.0, "log2 saturation")
    _assert_moments(np.log2(d["imgfilter"]).ravel(), 0.0, 1.0, "log2 band gains")
    _assert_moments(d["brightness"], 0.0, 0.2, "brightness")
    _assert_moments(d["xfrac"].ravel(), 0.0, 0.125, "xfrac")
    uniform_std = 2 * math.pi / math.sqrt(12)
    for name in ("hue", "pre_rotate"):
        assert np.abs(d[name]).max() <= math.pi
        _assert_moments(d[name], 0.0, uniform_std, name)
    assert np.abs(d["xint"]).max() <= 0.125
    _assert_moments(d["xint"].ravel(), 0.0, 0.25 / math.sqrt(12), "xint")
    # Half-normal noise std: mean sigma * sqrt(2 / pi).
    half_normal_mean = 0.1 * math.sqrt(2 / math.pi)
    assert abs(d["noise"].mean() - half_normal_mean) < 4 * 0.1 * 0.61 / math.sqrt(4000)
    assert set(np.unique(d["rotate90"])) == {0, 1, 2, 3}
    assert np.all(d["cutout"] == 0.5)
    assert 0 <= d["cutout_center"].min() and d["cutout_center"].max() < 1


def test_gradient_is_the_adjoint_of_the_image_map():
    """For fixed draws the pipe (no noise) is affine in the images, so the
    gradient of sum(pipe(x) * y) along v equals sum((pipe(x + v) - pipe(x)) * y)."""
    from keras_afgan.training.steps import backend_module

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    v = rng.normal(size=x.shape).astype("float32")
    y = rng.normal(size=x.shape).astype("float32")
    uniforms = rng.uniform(size=(3, NUM_DRAWS)).astype("float32")
    pipe = AugmentPipe(**preset_kwargs("bgcf"), cutout=1, p=0.8)

    y_tensor = ops.convert_to_tensor(y)

    def fn(images):
        return ops.sum(pipe(images, uniforms=uniforms) * y_tensor), ()

    grad, _ = backend_module().input_gradient(fn, ops.convert_to_tensor(x))
    along = float(np.sum(to_numpy(ops.stop_gradient(grad)).astype(np.float64) * v))
    difference = float(np.sum((to_numpy(pipe(x + v, uniforms=uniforms))
                               - to_numpy(pipe(x, uniforms=uniforms))).astype(np.float64) * y))
    assert abs(along - difference) <= 1e-4 * (abs(difference) + 1), (along, difference)
    assert abs(difference) > 1  # the check is not vacuous


def test_samples_are_independent_of_the_rest_of_the_batch():
    """Each image depends on its own draws only (the padding is the same for
    every batch), so one image augmented alone equals its row in a batch."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32")
    uniforms = rng.uniform(size=(4, NUM_DRAWS)).astype("float32")
    pipe = AugmentPipe(**preset_kwargs("bgcf"), cutout=1, p=1.0)
    batch = to_numpy(pipe(x, uniforms=uniforms))
    alone = to_numpy(pipe(x[2:3], uniforms=uniforms[2:3]))
    np.testing.assert_allclose(batch[2:3], alone, rtol=0, atol=1e-6)


def test_filter_bank_splits_the_spectrum():
    """The four bands sum to a unit impulse (a partition of unity), are
    zero-phase (symmetric) and each passes its octave: band b's response
    peaks in [pi / 2^(4-b), pi / 2^(3-b)] (band 0: at DC)."""
    bank = filters.filter_bank()
    impulse = np.zeros(bank.shape[1])
    impulse[bank.shape[1] // 2] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-12)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-12)
    omega = np.linspace(0, np.pi, 2049)
    taps = np.arange(bank.shape[1]) - bank.shape[1] // 2
    response = np.abs(bank @ np.exp(-1j * np.outer(taps, omega)))  # [4, F]
    assert np.argmax(response[0]) == 0
    for band in (1, 2, 3):
        peak = omega[np.argmax(response[band])]
        assert np.pi / 2 ** (4 - band) <= peak <= np.pi / 2 ** (3 - band), (band, peak)


def test_reflect_matrix_is_numpy_reflect_padding():
    x = np.arange(7.0)
    for lo, hi in ((3, 2), (6, 6), (0, 4)):
        np.testing.assert_array_equal(filters.reflect_matrix(7, lo, hi) @ x,
                                      np.pad(x, (lo, hi), mode="reflect"))


def test_config_round_trip_keeps_settings_and_p():
    pipe = AugmentPipe(**preset_kwargs("bgc"), xint_max=0.2, imgfilter_bands=(1, 0, 1, 0), p=0.4,
                       seed=5)
    pipe.p.assign(0.25)
    copy = AugmentPipe.from_config(pipe.get_config())
    assert copy.get_config() == pipe.get_config()
    assert copy.enabled == pipe.enabled == tuple(preset_kwargs("bgc"))
    model = keras.Sequential([keras.Input((16, 16, 3)), pipe])
    restored = keras.Sequential.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    assert float(to_numpy(restored.layers[0].p)) == 0.25


@pytest.mark.parametrize("kwargs, message", [
    ({"xflip": -1}, "xflip"),
    ({"scale_std": float("nan")}, "scale_std"),
    ({"imgfilter_bands": [1, 1]}, "imgfilter_bands"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentPipe(**kwargs)


def test_bad_inputs_are_refused():
    pipe = AugmentPipe(xflip=1)
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        pipe(np.zeros((2, 8, 8, 2), "float32"))
    with pytest.raises(ValueError, match="uniforms of shape"):
        pipe(np.zeros((2, 8, 8, 3), "float32"), uniforms=np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="debug_percentile"):
        pipe(np.zeros((2, 8, 8, 3), "float32"), debug_percentile=1.5)
    with pytest.raises(ValueError, match="augmentation preset"):
        preset_kwargs("bgcx")
