"""`AliasFreeGAN.fit`: one iteration's arithmetic, every backend, save and resume.

A small conditional model trains two iterations with config R's D-input blur
(sigma 10, then 6) and lazy R1 every 2nd iteration. Its updated weights are
checked against Adam applied by hand in numpy to the phases' gradients,
against the same two iterations on the other backends, and against a model
restored from a `.keras` file.
"""

import types

import keras
import numpy as np
import pytest

from keras_afgan.convert import discriminator_from_reference
from keras_afgan.convert import discriminator_to_reference
from keras_afgan.convert import generator_from_reference
from keras_afgan.convert import generator_to_reference
from keras_afgan.convert.reference import discriminator_kwargs_from_reference
from keras_afgan.convert.reference import generator_kwargs_from_reference
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training import losses
from tests.testing import BACKENDS
from tests.testing import assert_close
from tests.testing import run_python
from tests.testing import to_numpy

# The reference's G_kwargs / D_kwargs form (what generator_from_reference takes).
G_KWARGS = dict(z_dim=8, w_dim=8, c_dim=2, img_resolution=16, img_channels=3, channel_base=256,
                channel_max=16)
D_KWARGS = dict(c_dim=2, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                epilogue_kwargs={"mbstd_group_size": 2})
N = 4
# Blur sigma 10 at iteration 0 and 6 at iteration 1; R1 at iteration 0 only;
# G-EMA half-life min(10, images_seen * 0.5) images, so beta is 0, then 0.25.
GAN_KWARGS = dict(r1_gamma=1.5, r1_interval=2, ema_kimg=0.01, ema_rampup=0.5,
                  blur_init_sigma=10.0, blur_fade_kimg=0.01)
SIGMAS = (10.0, 6.0)
EMA_BETAS = (0.0, 0.5 ** (N / min(10.0, N * 0.5)))
G_LR, D_LR = 0.0025, 0.002
BETA_2, EPSILON = 0.99, 1e-8
F32_EPS = float(np.finfo(np.float32).eps)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return {
        "images": rng.uniform(-1, 1, (N, 16, 16, 3)).astype("float32"),
        "labels": np.eye(2, dtype="float32")[[0, 1, 1, 0]],
        "latents": rng.standard_normal((N, 2, 8)).astype("float32"),
    }


def _fit(gan, batch):
    gan.fit(batch, batch_size=N, epochs=1, shuffle=False, verbose=0)


def build_gan(weights_path, gan_kwargs):
    """An `AliasFreeGAN` on the reference-layout weights saved in `weights_path`."""
    with np.load(weights_path) as data:
        arrays = {k: data[k] for k in data.files}
    G = generator_from_reference(
        {k[2:]: v for k, v in arrays.items() if k.startswith("G/")}, **G_KWARGS)
    D = discriminator_from_reference(
        {k[2:]: v for k, v in arrays.items() if k.startswith("D/")}, **D_KWARGS)
    return AliasFreeGAN(G, D, **gan_kwargs)


def export_state(gan):
    """G, G_ema, D (reference names and layout) and the step counters."""
    state = {f"G/{k}": v for k, v in generator_to_reference(gan.generator, False).items()}
    state.update({f"G_ema/{k}": v
                  for k, v in generator_to_reference(gan.generator_ema, False).items()})
    state.update({f"D/{k}": v
                  for k, v in discriminator_to_reference(gan.discriminator, False).items()})
    state["images_seen"] = to_numpy(gan.images_seen)
    state["iteration"] = to_numpy(gan.iteration)
    return state


def fit_from_reference(weights_path, batches_path, out_path, gan_kwargs):
    """Fit one step per saved batch; save the state after each as `step<i>/...`."""
    gan = build_gan(weights_path, gan_kwargs)
    gan.compile()
    out = {}
    with np.load(batches_path) as data:
        batches = [{key: data[f"{i}/{key}"] for key in ("images", "labels", "latents")}
                   for i in range(len(data.files) // 3)]
    for i, batch in enumerate(batches):
        _fit(gan, batch)
        out.update({f"step{i}/{k}": v for k, v in export_state(gan).items()})
    np.savez(out_path, **out)


def _values(variables):
    return [to_numpy(v).copy() for v in variables]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two fit iterations from saved weights, with snapshots and Gmain's gradients."""
    tmp = tmp_path_factory.mktemp("train_step")
    keras.utils.set_random_seed(3)  # D's initial weights; both nets go through the npz
    G = Generator(seed=1, **generator_kwargs_from_reference(**G_KWARGS))
    D = Discriminator(**discriminator_kwargs_from_reference(**D_KWARGS))
    weights = str(tmp / "weights.npz")
    np.savez(weights, **{f"G/{k}": v for k, v in generator_to_reference(G).items()},
             **{f"D/{k}": v for k, v in discriminator_to_reference(D).items()})
    batches = [_batch(0), _batch(1)]
    batches_path = str(tmp / "batches.npz")
    np.savez(batches_path, **{f"{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()})

    gan = build_gan(weights, GAN_KWARGS)
    run = types.SimpleNamespace(gan=gan, tmp=tmp, weights=weights, batches=batches,
                                batches_path=batches_path, steps=[])
    run.initial = export_state(gan)
    run.g_initial = _values(gan.generator.trainable_variables)
    run.d_initial = _values(gan.discriminator.trainable_variables)
    b = batches[0]
    _, _, grads = gan.phase_gmain(b["latents"][:, 0], b["labels"], SIGMAS[0])
    run.g_grads = _values(grads)

    gan.compile()
    for batch in batches:
        _fit(gan, batch)
        run.steps.append(types.SimpleNamespace(
            state=export_state(gan),
            g_trainable=_values(gan.generator.trainable_variables),
            g_variables=_values(gan.generator.variables),
            g_ema_variables=_values(gan.generator_ema.variables),
            d_trainable=_values(gan.discriminator.trainable_variables),
            g_optimizer=_values(gan.g_optimizer.variables),
            d_optimizer=_values(gan.d_optimizer.variables),
        ))
    run.saved = str(tmp / "gan.keras")
    gan.save(run.saved)
    return run


def _adam(weights, grads, step, lr, beta_2, state=None):
    """Keras's Adam (beta_1 = 0) by hand in float64; returns new weights and v."""
    v = [np.zeros_like(w, np.float64) for w in weights] if state is None else state
    out, new_v = [], []
    alpha = lr * np.sqrt(1 - beta_2**step)  # / (1 - beta_1**step) = 1
    for w, g, v_i in zip(weights, grads, v):
        g = np.asarray(g, np.float64)
        v_i = v_i + (g * g - v_i) * (1 - beta_2)
        out.append(w - g * alpha / (np.sqrt(v_i) + EPSILON))  # m = g when beta_1 = 0
        new_v.append(v_i)
    return out, new_v


def _assert_all_close(actual, expected, atol, what, rtol=0.0):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, atol=atol, rtol=rtol, what=f"{what}[{i}]")


def test_generator_step_is_adam_on_gmain_gradients(trained):
    expected, _ = _adam(trained.g_initial, trained.g_grads, 1, G_LR, BETA_2)
    moved = max(np.abs(e - w).max() for e, w in zip(expected, trained.g_initial))
    assert moved > 0.5 * G_LR  # Adam's first step moves weights by about lr
    # rtol: float32 rounding of weights as large as 1/lr_multiplier.
    _assert_all_close(trained.steps[0].g_trainable, expected, 2e-6, "G after one step",
                      rtol=F32_EPS)


def test_discriminator_steps_are_adam_on_dmain_then_dreg(trained):
    """Iteration 0: Dmain (after Gmain's update), then R1, two D optimizer steps."""
    ratio = 2 / 3  # r1_interval / (r1_interval + 1)
    lr, beta_2 = D_LR * ratio, BETA_2**ratio
    gan = build_gan(trained.weights, GAN_KWARGS)
    for variable, value in zip(gan.generator.trainable_variables, trained.steps[0].g_trainable):
        variable.assign(value)
    b = trained.batches[0]
    real = b["images"]
    _, _, grads = gan.phase_dmain(b["latents"][:, 1], real, b["labels"], SIGMAS[0])
    # Dmain moved G's statistics exactly as the fit step did.
    _assert_all_close(_values(gan.generator.variables), trained.steps[0].g_variables, 1e-6,
                      "G statistics after Dmain")
    d_half, v = _adam(trained.d_initial, _values(grads), 1, lr, beta_2)
    for variable, value in zip(gan.discriminator.trainable_variables, d_half):
        variable.assign(value.astype("float32"))
    _, _, grads = gan.phase_dreg(real, b["labels"], SIGMAS[0])
    expected, _ = _adam(d_half, _values(grads), 2, lr, beta_2, v)
    _assert_all_close(trained.steps[0].d_trainable, expected, 2e-6, "D after one iteration",
                      rtol=F32_EPS)


def test_generator_ema(trained):
    first, second = trained.steps
    # images_seen 0: the ramp-up makes beta 0, so G_ema is G (buffers included).
    _assert_all_close(first.g_ema_variables, first.g_variables, 0.0, "G_ema after step 1")
    beta = EMA_BETAS[1]
    trainable = {id(v) for v in trained.gan.generator.trainable_variables}
    is_param = [id(v) in trainable for v in trained.gan.generator.variables]
    expected = [p + (e - p) * beta if param else p
                for p, e, param in zip(second.g_variables, first.g_ema_variables, is_param)]
    _assert_all_close(second.g_ema_variables, expected, 1e-6, "G_ema after step 2")
    moved = max(np.abs(a - b).max() for a, b in zip(second.g_ema_variables, second.g_variables))
    assert moved > 1e-4  # beta = 0.25 is not a copy


def test_ema_beta_schedule(trained):
    gan = trained.gan
    for images_seen in (0, 4, 12, 100, 10**6):
        ema_nimg = min(GAN_KWARGS["ema_kimg"] * 1000, images_seen * GAN_KWARGS["ema_rampup"])
        expected = 0.5 ** (N / ema_nimg) if ema_nimg > 0 else 0.0
        beta = float(to_numpy(gan.ema_beta(np.int32(images_seen), N)))
        assert beta == pytest.approx(expected, rel=1e-5, abs=1e-7), images_seen


def test_step_counters(trained):
    """r1_interval=2: iterations 0 and 1 take 3 D steps (R1 at 0 only) and 2 G steps."""
    gan = trained.gan
    state = trained.steps[1].state
    assert int(state["iteration"]) == 2
    assert int(state["images_seen"]) == 2 * N
    assert int(to_numpy(trained.steps[1].g_optimizer[0])) == 2
    assert int(to_numpy(trained.steps[1].d_optimizer[0])) == 3
    assert gan.g_optimizer is not gan.d_optimizer
    assert float(to_numpy(gan.d_optimizer.learning_rate)) == pytest.approx(D_LR * 2 / 3)


def test_default_optimizers():
    G = Generator(seed=1, **generator_kwargs_from_reference(**G_KWARGS))
    D = Discriminator(**discriminator_kwargs_from_reference(**D_KWARGS))
    gan = AliasFreeGAN(G, D)
    gan.compile()
    g_opt, d_opt = gan.g_optimizer, gan.d_optimizer
    assert float(to_numpy(g_opt.learning_rate)) == pytest.approx(G_LR)
    assert float(to_numpy(d_opt.learning_rate)) == pytest.approx(D_LR * 16 / 17)
    assert (g_opt.beta_1, d_opt.beta_1) == (0.0, 0.0)
    assert g_opt.beta_2 == pytest.approx(0.99)
    assert d_opt.beta_2 == pytest.approx(0.99 ** (16 / 17))
    assert (g_opt.epsilon, d_opt.epsilon) == (1e-8, 1e-8)
    # Each network's variables go to its own optimizer.
    for variable in G.trainable_variables:
        assert gan.optimizer._optimizer_map(variable) is g_opt, variable.path
    for variable in D.trainable_variables:
        assert gan.optimizer._optimizer_map(variable) is d_opt, variable.path


def test_sanitize_gradients():
    g = np.array([[np.nan, np.inf, -np.inf], [1.5, -2.0, 0.0]], "float32")
    (out, none) = losses.sanitize_gradients([g, None])
    assert none is None
    np.testing.assert_array_equal(to_numpy(out), [[0.0, 1e5, -1e5], [1.5, -2.0, 0.0]])


@pytest.fixture(scope="module")
def fresh_gan():
    """A compiled conditional GAN that never trains (bad inputs fail before a step)."""
    G = Generator(seed=1, **generator_kwargs_from_reference(**G_KWARGS))
    D = Discriminator(**discriminator_kwargs_from_reference(**D_KWARGS))
    gan = AliasFreeGAN(G, D)
    gan.compile()
    return gan


def test_conditional_gan_needs_labels(fresh_gan):
    batch = _batch(0)
    with pytest.raises(ValueError, match=r"conditional \(c_dim=2\).*labels"):
        _fit(fresh_gan, batch["images"])
    with pytest.raises(ValueError, match=r"conditional \(c_dim=2\).*labels"):
        _fit(fresh_gan, {"images": batch["images"], "latents": batch["latents"]})


def test_wrong_image_size(fresh_gan):
    batch = dict(_batch(0), images=np.zeros((N, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"\[N, 16, 16, 3\].*8, 8, 3\)"):
        _fit(fresh_gan, batch)


def test_unknown_batch_keys(fresh_gan):
    batch = dict(_batch(0), noise=np.zeros((N, 1), "float32"))
    with pytest.raises(ValueError, match="noise"):
        _fit(fresh_gan, batch)


def test_mismatched_networks(fresh_gan):
    G = fresh_gan.generator
    with pytest.raises(ValueError, match="c_dim=2.*c_dim=0"):
        AliasFreeGAN(G, Discriminator(c_dim=0, img_resolution=16, channel_base=256,
                                      channel_max=16))
    with pytest.raises(ValueError, match="resolution.*16 and 32"):
        AliasFreeGAN(G, Discriminator(c_dim=2, img_resolution=32, channel_base=256,
                                      channel_max=16))


def _assert_states_close(actual, expected, atol, rtol, what):
    assert sorted(actual) == sorted(expected), what
    for key, e in expected.items():
        a = actual[key]
        assert_close(a, e, atol=atol, what=f"{what} {key}")
        err = np.linalg.norm(np.asarray(a, np.float64) - e)
        assert err <= rtol * np.linalg.norm(np.asarray(e, np.float64)) + atol, (
            f"{what} {key}: relative error {err / max(np.linalg.norm(e), 1e-30):.3g}")


@pytest.mark.slow
def test_same_iterations_on_every_backend(trained):
    """The same weights and batches give the same G, D and G_ema on every backend."""
    for i, step in enumerate(trained.steps):
        moved = max(np.abs(step.state[k] - trained.initial[k]).max()
                    for k in trained.initial if k.startswith(("G/", "D/")))
        assert moved > 1e-3, f"step {i} left the weights where they were"
    for backend in BACKENDS:
        if backend == keras.backend.backend():
            continue
        out = str(trained.tmp / f"{backend}.npz")
        run_python(
            "from tests.training.test_train_step import fit_from_reference\n"
            f"fit_from_reference({trained.weights!r}, {trained.batches_path!r}, {out!r}, "
            f"{GAN_KWARGS!r})\n", backend)
        with np.load(out) as data:
            theirs = {k: data[k] for k in data.files}
        for i, step in enumerate(trained.steps):
            prefix = f"step{i}/"
            _assert_states_close({k[len(prefix):]: v for k, v in theirs.items()
                                  if k.startswith(prefix)},
                                 step.state, atol=1e-4, rtol=1e-4,
                                 what=f"{backend} vs {keras.backend.backend()}, step {i}")


def test_save_and_restore(trained):
    gan = trained.gan
    last = trained.steps[-1]
    restored = keras.saving.load_model(trained.saved)
    assert isinstance(restored, AliasFreeGAN)
    _assert_states_close(export_state(restored), last.state, 0.0, 0.0, "restored")
    assert restored.g_optimizer is not restored.d_optimizer
    for name, values in (("g_optimizer", last.g_optimizer), ("d_optimizer", last.d_optimizer)):
        variables = getattr(restored, name).variables
        assert [v.path for v in variables] == [v.path for v in getattr(gan, name).variables]
        _assert_all_close(_values(variables), values, 0.0, f"restored {name}")
    assert float(to_numpy(restored.d_optimizer.learning_rate)) == pytest.approx(D_LR * 2 / 3)

    batch = _batch(2)
    _fit(gan, batch)
    _fit(restored, batch)
    original = export_state(gan)
    _assert_states_close(export_state(restored), original, 1e-6, 1e-6, "one more step")
    for name in ("g_optimizer", "d_optimizer"):
        _assert_all_close(_values(getattr(restored, name).variables),
                          _values(getattr(gan, name).variables), 1e-6, f"{name} after a step")
