"""One reference training iteration, phase by phase (shared/golden CASE_train.*).

For every golden case: the losses of the non-saturating logistic recipe and
the R1 penalty against CASE.npz, and the gradients of Gmain, Dmain and the
lazy R1 phase Dreg against CASE_train.npz, each tensor compared in the
reference's layout; the statistics (w_avg, magnitude_ema) that Dmain updates;
and the D-input blur schedule. Gradients and buffers use the golden README's
tolerances; losses ~10x the largest error measured on the three backends.

Each case's phases run once per module (compiled on JAX, eagerly on
TensorFlow and torch) and the tests share the results.
"""

import json

import numpy as np
import pytest

from keras_afgan.convert.reference import _discriminator_entries
from keras_afgan.convert.reference import _generator_entries
from keras_afgan.convert.reference import _to_reference
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training import losses
from tests.conftest import GOLDEN_DIR
from tests.testing import assert_close
from tests.testing import run_compiled
from tests.testing import to_numpy

PHASES = ("Gmain", "Dmain", "Dreg")
# Config R's D-input blur as the golden run used it: sigma 10 fading over
# 200 kimg (the reference's `batch * 200 / 32` at its batch of 32).
R_BLUR_INIT_SIGMA = 10.0
R_BLUR_FADE_KIMG = 200.0


def _train_meta(case):
    return json.loads((GOLDEN_DIR / f"{case.name}_train.json").read_text())


def _train_arrays(case):
    with np.load(GOLDEN_DIR / f"{case.name}_train.npz") as data:
        return {k: data[k] for k in data.files}


def _inputs(case):
    """z, c (None for an unconditional case) and NHWC reals of the case."""
    c = case.arrays["in/c"] if case.meta["G_kwargs"]["c_dim"] else None
    return case.arrays["in/z"], c, case.nhwc("in/real")


def _named_gradients(net, grads):
    """Gradients by reference name, in the reference layout."""
    entries = _generator_entries(net) if hasattr(net, "synthesis") else _discriminator_entries(net)
    by_id = {id(variable): (name, layout) for name, (variable, layout) in entries.items()}
    assert len(grads) == len(net.trainable_variables)
    named = {}
    for variable, grad in zip(net.trainable_variables, grads):
        assert id(variable) in by_id, f"trainable variable {variable.path} has no reference name"
        name, layout = by_id[id(variable)]
        named[name] = _to_reference(to_numpy(grad), layout)
    return named


def _buffers(G):
    """G's statistics (w_avg and every magnitude_ema) by reference name."""
    return {name: to_numpy(variable) for name, (variable, _) in _generator_entries(G).items()
            if name.endswith(("w_avg", "magnitude_ema"))}


def _run_phases(case):
    """Gmain, Dmain, Dreg from the case's weights, in the reference's order.

    Gmain runs first, on the stored statistics; Dmain then updates G's
    statistics (which only Dmain's own fake images see); Dreg uses D alone,
    which no phase changes (gradients are computed, never applied).
    """
    meta = _train_meta(case)
    z, c, real = _inputs(case)
    sigma = meta["d_blur_sigma"] or None
    G, D = case.generator(), case.discriminator()
    gan = AliasFreeGAN(G, D, r1_gamma=meta["r1_gamma"], r1_interval=meta["gains"]["Dreg"])
    stored = {f"G/{name}": case.arrays[f"G/{name}"] for name in _buffers(G)}
    before = {f"G/{name}": value for name, value in _buffers(G).items()}
    assert before.keys() == stored.keys()
    for key in stored:
        np.testing.assert_array_equal(before[key], stored[key], err_msg=key)

    results = {"gan": gan, "grads": {}, "sigma": sigma}
    state = gan.variables
    _, _, grads = run_compiled(lambda z, c: gan.phase_gmain(z, c, sigma), state, z, c)
    results["grads"]["Gmain"] = _named_gradients(G, grads)
    _, _, grads = run_compiled(lambda z, real, c: gan.phase_dmain(z, real, c, sigma), state,
                               z, real, c)
    results["grads"]["Dmain"] = _named_gradients(D, grads)
    results["buffers_after_Dmain"] = _buffers(G)
    loss, (penalty, _), grads = run_compiled(lambda real, c: gan.phase_dreg(real, c, sigma),
                                             state, real, c)
    results["grads"]["Dreg"] = _named_gradients(D, grads)
    if sigma is None:
        results["dreg_no_blur"] = (to_numpy(loss), to_numpy(penalty))
    else:
        loss, (penalty, _), _ = run_compiled(lambda real, c: gan.phase_dreg(real, c, None),
                                             state, real, c)
        results["dreg_no_blur"] = (to_numpy(loss), to_numpy(penalty))
    return results


@pytest.fixture(scope="module")
def _phase_cache():
    return {}


@pytest.fixture
def phases(case, _phase_cache):
    if case.name not in _phase_cache:
        _phase_cache[case.name] = _run_phases(case)
    return _phase_cache[case.name]


def _loss_close(actual, expected, what, rtol=5e-6):
    # ~10x the largest relative error measured: losses 3.4e-7, the per-sample
    # R1 penalties 5e-6, their means 1.2e-6.
    assert_close(actual, expected, rtol=rtol, what=what)


def test_losses(case, phases):
    D = phases["gan"].discriminator
    _, c, real = _inputs(case)
    fake_logits = D(case.nhwc("out/img"), c)
    real_logits = D(real, c)
    _loss_close(losses.generator_loss(fake_logits), case.arrays["out/loss_Gmain"], "loss_Gmain")
    total, loss_gen, loss_real = losses.discriminator_loss(fake_logits, real_logits)
    _loss_close(loss_gen, case.arrays["out/loss_Dgen"], "loss_Dgen")
    _loss_close(loss_real, case.arrays["out/loss_Dreal"], "loss_Dreal")
    _loss_close(total, case.arrays["out/loss_Dgen"] + case.arrays["out/loss_Dreal"], "loss_D")


def test_r1_penalty(case, phases):
    loss, penalty = phases["dreg_no_blur"]
    _loss_close(penalty, case.arrays["out/r1_penalty"], "r1_penalty", rtol=5e-5)
    gamma = case.meta["r1_gamma"]
    _loss_close(np.mean(penalty) * gamma / 2, case.arrays["out/loss_Dr1"], "loss_Dr1", rtol=2e-5)
    # The phase's own loss: gamma from the train JSON, times the lazy interval.
    meta = _train_meta(case)
    expected = (np.mean(case.arrays["out/r1_penalty"]) * meta["r1_gamma"] / 2
                * meta["gains"]["Dreg"])
    _loss_close(loss, expected, "Dreg loss", rtol=2e-5)


@pytest.mark.parametrize("phase", PHASES)
def test_gradients(case, phases, phase):
    net = "G" if phase == "Gmain" else "D"
    prefix = f"grad/{phase}/{net}/"
    golden = {k[len(prefix):]: v for k, v in _train_arrays(case).items() if k.startswith(prefix)}
    ours = phases["grads"][phase]
    assert golden, f"no {prefix}* keys in {case.name}_train.npz"
    assert sorted(golden) == sorted(ours), (
        f"golden keys without a variable: {sorted(set(golden) - set(ours))}; "
        f"variables without a golden key: {sorted(set(ours) - set(golden))}")
    failures = []
    for name, ref in golden.items():
        g = ours[name]
        assert g.shape == ref.shape, f"{phase} {name}: shape {g.shape} != {ref.shape}"
        # README: ~1e-3 relative on each tensor's norm, ~1e-6 absolute.
        err = np.linalg.norm((g - ref).astype(np.float64))
        norm = np.linalg.norm(ref.astype(np.float64))
        bound = 1e-3 * norm + 1e-6 * np.sqrt(ref.size)
        if not err <= bound:
            failures.append(f"{name}: |g - ref| = {err:.3g}, |ref| = {norm:.3g}, "
                            f"bound {bound:.3g}")
    assert not failures, f"{case.name} {phase}:\n" + "\n".join(failures)


def test_buffers_after_dmain(case, phases):
    prefix = "buffers_after_Dmain/G/"
    golden = {k[len(prefix):]: v for k, v in _train_arrays(case).items() if k.startswith(prefix)}
    ours = phases["buffers_after_Dmain"]
    assert sorted(golden) == sorted(ours)
    for name, ref in golden.items():
        assert_close(ours[name], ref, atol=1e-6, what=name)
        # The statistics did move, so equality above is not the stored value.
        assert np.abs(ref - case.arrays[f"G/{name}"]).max() > 1e-6, name


def _expected_blur_sigma(cfg, images_seen):
    init = R_BLUR_INIT_SIGMA if cfg == "stylegan3-r" else 0.0
    return max(1.0 - images_seen / (R_BLUR_FADE_KIMG * 1000.0), 0.0) * init


def test_blur_schedule(case, phases):
    meta = _train_meta(case)
    cfg = case.meta["cfg"]
    expected = _expected_blur_sigma(cfg, meta["cur_nimg"])
    assert expected == pytest.approx(meta["d_blur_sigma"], abs=1e-6)
    gan = phases["gan"]
    init = R_BLUR_INIT_SIGMA if cfg == "stylegan3-r" else 0.0
    scheduled = AliasFreeGAN(gan.generator, gan.discriminator, blur_init_sigma=init,
                             blur_fade_kimg=R_BLUR_FADE_KIMG)
    for images_seen in (meta["cur_nimg"], 0, 50_000, 199_999, 200_000, 1_000_000):
        sigma = scheduled.blur_sigma(np.int32(images_seen))
        sigma = 0.0 if sigma is None else float(to_numpy(sigma))
        expected = _expected_blur_sigma(cfg, images_seen)
        assert sigma == pytest.approx(expected, abs=1e-5), images_seen
