"""`AliasFreeGAN.fit`: one iteration's arithmetic, every backend, save and resume.

A small conditional model trains two iterations with config R's D-input blur
(sigma 10, then 6) and lazy R1 every 2nd iteration; its fake images take
labels of their own (`gen_labels`, as the reference's `gen_c`), not the real
batch's. Its updated weights are checked against Adam (torch's form) applied
by hand in numpy to the phases' gradients,
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
from tests.testing import assert_close
from tests.testing import other_backends
from tests.testing import run_python
from tests.testing import to_numpy

# The reference's G_kwargs / D_kwargs form (what generator_from_reference takes).
G_KWARGS = dict(z_dim=8, w_dim=8, c_dim=2, img_resolution=16, img_channels=3, channel_base=256,
                channel_max=16)
D_KWARGS = dict(c_dim=2, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                epilogue_kwargs={"mbstd_group_size": 2})
N = 4
BATCH_KEYS = ("images", "labels", "latents", "gen_labels")
# Blur sigma 10 at iteration 0 and 6 at iteration 1; R1 at iteration 0 only;
# G-EMA half-life min(10, images_seen * 0.5) images, so beta is 0, then 0.25.
GAN_KWARGS = dict(r1_gamma=1.5, r1_interval=2, ema_kimg=0.01, ema_rampup=0.5,
                  blur_init_sigma=10.0, blur_fade_kimg=0.01)
SIGMAS = (10.0, 6.0)
EXPECTED_COUNTERS = [dict(images_seen=N, iteration=1, g_steps=1, d_steps=2),
                     dict(images_seen=2 * N, iteration=2, g_steps=2, d_steps=3)]
EMA_BETAS = (0.0, 0.5 ** (N / min(10.0, N * 0.5)))
G_LR, D_LR = 0.0025, 0.002
BETA_2, EPSILON = 0.99, 1e-8
F32_EPS = float(np.finfo(np.float32).eps)
MAX_ADAM_MOVE = 1.5 * G_LR  # Adam's step with beta_1 = 0 is at most ~1.41 lr
ADAM_SENSITIVE = 1e-6  # |g| where Adam's first steps depend steeply on g
GRAD_ROUNDING = 3e-4  # eager vs compiled gradients, relative to a tensor's max |g|


def _batch(seed):
    rng = np.random.default_rng(seed)
    return {
        "images": rng.uniform(-1, 1, (N, 16, 16, 3)).astype("float32"),
        "labels": np.eye(2, dtype="float32")[[0, 1, 1, 0]],
        "latents": rng.standard_normal((N, 2, 8)).astype("float32"),
        # Gmain's fakes: [1, 1, 0, 1]; Dmain's: [1, 0, 0, 0] (not the reals').
        "gen_labels": np.eye(2, dtype="float32")[[[1, 1], [1, 0], [0, 0], [1, 0]]],
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
    """G, G_ema, D by reference name (reference layout)."""
    state = {f"G/{k}": v for k, v in generator_to_reference(gan.generator, False).items()}
    state.update({f"G_ema/{k}": v
                  for k, v in generator_to_reference(gan.generator_ema, False).items()})
    state.update({f"D/{k}": v
                  for k, v in discriminator_to_reference(gan.discriminator, False).items()})
    return state


def export_counters(gan):
    """Images seen, iterations, and each optimizer's steps."""
    return {name: int(to_numpy(value)) for name, value in (
        ("images_seen", gan.images_seen), ("iteration", gan.iteration),
        ("g_steps", gan.g_optimizer.iterations), ("d_steps", gan.d_optimizer.iterations))}


def fit_from_reference(weights_path, batches_path, out_path, gan_kwargs):
    """Fit one step per saved batch; save the state after each as `step<i>/...`."""
    gan = build_gan(weights_path, gan_kwargs)
    gan.compile()
    out = {}
    with np.load(batches_path) as data:
        batches = [{key: data[f"{i}/{key}"] for key in BATCH_KEYS}
                   for i in range(len(data.files) // len(BATCH_KEYS))]
    for i, batch in enumerate(batches):
        _fit(gan, batch)
        out.update({f"step{i}/{k}": v for k, v in export_state(gan).items()})
        out.update({f"step{i}/count/{k}": v for k, v in export_counters(gan).items()})
    np.savez(out_path, **out)


def restore_and_export(saved_path, out_path, batches_path=None):
    """Load a saved `AliasFreeGAN` and save what it restored; then, with
    `batches_path`, fit one step on its first batch and save the counters."""
    gan = keras.saving.load_model(saved_path)
    out = export_state(gan)
    out.update({f"count/{k}": v for k, v in export_counters(gan).items()})
    for name in ("g_optimizer", "d_optimizer"):
        out.update({f"{name}/{i}": to_numpy(v)
                    for i, v in enumerate(getattr(gan, name).variables)})
    out["jit_compile"] = gan.jit_compile
    out["accelerator"] = False
    if keras.config.backend() == "tensorflow":
        from keras_afgan.training.steps.tensorflow import accelerator_present

        out["accelerator"] = accelerator_present()
    if batches_path is not None:
        with np.load(batches_path) as data:
            _fit(gan, {key: data[f"0/{key}"] for key in BATCH_KEYS})
        out.update({f"after/{k}": v for k, v in export_counters(gan).items()})
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
    _, _, grads = gan.phase_gmain(b["latents"][:, 0], b["gen_labels"][:, 0], SIGMAS[0])
    run.g_grads = _values(grads)

    gan.compile()
    for batch in batches:
        _fit(gan, batch)
        run.steps.append(types.SimpleNamespace(
            state=export_state(gan),
            counters=export_counters(gan),
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
    """Adam in torch's form (beta_1 = 0) by hand in float64; returns new weights and v.

    `w -= lr * m_hat / (sqrt(v_hat) + eps)`: epsilon on the bias-corrected
    root, as torch.optim.Adam (the reference's optimizer) adds it.
    """
    v = [np.zeros_like(w, np.float64) for w in weights] if state is None else state
    out, new_v = [], []
    for w, g, v_i in zip(weights, grads, v):
        g = np.asarray(g, np.float64)
        v_i = v_i + (g * g - v_i) * (1 - beta_2)
        v_hat = v_i / (1 - beta_2**step)
        out.append(w - lr * g / (np.sqrt(v_hat) + EPSILON))  # m_hat = g when beta_1 = 0
        new_v.append(v_i)
    return out, new_v


def _assert_all_close(actual, expected, atol, what, rtol=0.0):
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, atol=atol, rtol=rtol, what=f"{what}[{i}]")


def _assert_updates_close(actual, expected, initial, atol, rtol, steps, what, sensitive=None,
                          between=None):
    """Trained weights equal up to float32 rounding, and up to Adam's sign flips.

    `actual`, `expected`, `initial`: name -> array. Elementwise within `atol`
    (plus float32 rounding of the weight), and each tensor's update
    (`expected - initial`) within `rtol` of its norm. Adam with beta_1 = 0
    first moves a weight by `lr * g / (|g| + eps)`: `lr * sign(g)` for
    |g| >> 1e-8, but steeply dependent on g near 1e-8, so gradients that
    differ only by rounding (eager vs compiled, one backend vs another) may
    move such a weight differently. At most max(2, 1e-4 of all elements) may,
    and only within Adam's bounded step; with `sensitive` (name -> mask of
    elements whose gradient is in that steep range) only those of its
    tensors, as many as there are (tensors it does not name count against
    the cap). With
    `between` (name -> two arrays: the weights after Adam on the gradients
    moved down and up by their rounding tolerance) every element that
    differs must lie between the two, however many there are.
    """
    assert sorted(actual) == sorted(expected), what
    flips, total = [], 0
    for name, e in expected.items():
        a, e = np.asarray(actual[name], np.float64), np.asarray(e, np.float64)
        assert a.shape == e.shape, f"{what} {name}: shape {a.shape} != {e.shape}"
        total += e.size
        err = np.abs(a - e)
        far = err > atol + F32_EPS * np.abs(e)
        for index in map(tuple, np.argwhere(far)):
            flip = f"{name}{list(index)}: {a[index]:.7g} vs {e[index]:.7g}"
            # Two runs of `steps` Adam steps each end at most this far apart.
            assert err[index] <= MAX_ADAM_MOVE * 2 * steps, f"{what}: {flip}"
            if sensitive is not None and name in sensitive:
                assert sensitive[name][index], (
                    f"{what}: {flip}, where Adam is not sensitive to the gradient")
            else:
                flips.append(flip)
            if between is not None:
                low, high = sorted(float(b[name][index]) for b in between)
                slack = atol + F32_EPS * abs(e[index])
                assert low - slack <= a[index] <= high + slack, (
                    f"{what}: {flip}, outside Adam's steps for gradients within their "
                    f"rounding tolerance: [{low:.7g}, {high:.7g}]")
        update = np.linalg.norm(e - initial[name])
        diff = np.linalg.norm(np.where(far, 0.0, a - e))
        assert diff <= rtol * update + F32_EPS * np.linalg.norm(e), (
            f"{what} {name}: |difference| {diff:.3g} for an update of norm {update:.3g}")
    if between is None:
        assert len(flips) <= max(2, 1e-4 * total), f"{what}: {len(flips)} differ:\n" + "\n".join(
            flips[:20])


def _named(values, variables):
    return {f"{i}:{v.path}": value for i, (v, value) in enumerate(zip(variables, values))}


def test_generator_step_is_adam_on_gmain_gradients(trained):
    expected, _ = _adam(trained.g_initial, trained.g_grads, 1, G_LR, BETA_2)
    moved = max(np.abs(e - w).max() for e, w in zip(expected, trained.g_initial))
    assert moved > 0.5 * G_LR  # Adam's first step moves weights by about lr
    variables = trained.gan.generator.trainable_variables
    sensitive = _named([np.abs(g) < ADAM_SENSITIVE for g in trained.g_grads], variables)
    # The fit step's gradients are compiled (XLA, jit) and these eager: their
    # rounding differs by up to ~1e-4 of a tensor's largest gradient (measured
    # on TF: 1e-6 in the synthesis, 1e-4 in the mapping network). Where |g| is
    # that small, Adam's step is anything between its steps for g -/+ that.
    bounds = [_adam(trained.g_initial, [g + sign * GRAD_ROUNDING * np.abs(g).max()
                                        for g in trained.g_grads], 1, G_LR, BETA_2)[0]
              for sign in (-1, 1)]
    _assert_updates_close(_named(trained.steps[0].g_trainable, variables),
                          _named(expected, variables), _named(trained.g_initial, variables),
                          atol=2e-6, rtol=1e-3, steps=1, what="G after one step",
                          sensitive=sensitive, between=[_named(b, variables) for b in bounds])


def test_discriminator_steps_are_adam_on_dmain_then_dreg(trained):
    """Iteration 0: Dmain (after Gmain's update), then R1, two D optimizer steps."""
    ratio = 2 / 3  # r1_interval / (r1_interval + 1)
    lr, beta_2 = D_LR * ratio, BETA_2**ratio
    gan = build_gan(trained.weights, GAN_KWARGS)
    for variable, value in zip(gan.generator.trainable_variables, trained.steps[0].g_trainable):
        variable.assign(value)
    b = trained.batches[0]
    real = b["images"]
    _, _, grads = gan.phase_dmain(b["latents"][:, 1], real, b["labels"], SIGMAS[0],
                                  gen_c=b["gen_labels"][:, 1])
    # Dmain moved G's statistics exactly as the fit step did.
    _assert_all_close(_values(gan.generator.variables), trained.steps[0].g_variables, 1e-6,
                      "G statistics after Dmain")
    d_half, v = _adam(trained.d_initial, _values(grads), 1, lr, beta_2)
    for variable, value in zip(gan.discriminator.trainable_variables, d_half):
        variable.assign(value.astype("float32"))
    _, _, grads_reg = gan.phase_dreg(real, b["labels"], SIGMAS[0])
    expected, _ = _adam(d_half, _values(grads_reg), 2, lr, beta_2, v)
    variables = gan.discriminator.trainable_variables
    sensitive = _named([np.minimum(np.abs(to_numpy(g1)), np.abs(to_numpy(g2))) < ADAM_SENSITIVE
                        for g1, g2 in zip(grads, grads_reg)], variables)
    _assert_updates_close(_named(trained.steps[0].d_trainable, variables),
                          _named(expected, variables), _named(trained.d_initial, variables),
                          atol=2e-6, rtol=1e-3, steps=2, what="D after one iteration",
                          sensitive=sensitive)


def test_generator_ema(trained):
    first, second = trained.steps
    # images_seen 0: the ramp-up makes beta 0, so G_ema is G (buffers included).
    _assert_all_close(first.g_ema_variables, first.g_variables, 0.0, "G_ema after step 1")
    beta = EMA_BETAS[1]
    trainable = {id(v) for v in trained.gan.generator.trainable_variables}
    is_param = [id(v) in trainable for v in trained.gan.generator.variables]
    expected = [p + (e - p) * beta if param else p
                for p, e, param in zip(second.g_variables, first.g_ema_variables, is_param)]
    _assert_all_close(second.g_ema_variables, expected, 1e-6, "G_ema after step 2",
                      rtol=F32_EPS)
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
    assert [step.counters for step in trained.steps] == EXPECTED_COUNTERS
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


@pytest.fixture
def fresh_gan():
    """A compiled conditional GAN that never trains.

    One per test: on JAX, Keras's fit hands the variables' values to the train
    function, and a step that raises leaves the model without them.
    """
    G = Generator(seed=1, **generator_kwargs_from_reference(**G_KWARGS))
    D = Discriminator(**discriminator_kwargs_from_reference(**D_KWARGS))
    gan = AliasFreeGAN(G, D)
    gan.compile()
    return gan


_GOOD = _batch(0)


@pytest.mark.parametrize("batch, message", [
    (_GOOD["images"], r"conditional \(c_dim=2\): expected batches with labels"),
    ({"images": _GOOD["images"], "latents": _GOOD["latents"]},
     r"conditional \(c_dim=2\): expected batches with labels"),
    (dict(_GOOD, images=np.zeros((N, 8, 8, 3), "float32")),
     r"images of shape \[N, 16, 16, 3\]\. Received: shape=\(\w+, 8, 8, 3\)"),
    (dict(_GOOD, noise=np.zeros((N, 1), "float32")), r"Received keys: .*'noise'"),
], ids=["images_only", "no_labels", "wrong_size", "unknown_key"])
def test_bad_batches(fresh_gan, batch, message):
    with pytest.raises(ValueError, match=message):
        _fit(fresh_gan, batch)


def test_mismatched_networks():
    G = Generator(seed=1, **generator_kwargs_from_reference(**G_KWARGS))
    with pytest.raises(ValueError, match="c_dim=2.*c_dim=0"):
        AliasFreeGAN(G, Discriminator(c_dim=0, img_resolution=16, channel_base=256,
                                      channel_max=16))
    with pytest.raises(ValueError, match="resolution.*16 and 32"):
        AliasFreeGAN(G, Discriminator(c_dim=2, img_resolution=32, channel_base=256,
                                      channel_max=16))


def _assert_states_equal(actual, expected, atol, what):
    assert sorted(actual) == sorted(expected), what
    for key, value in expected.items():
        assert_close(actual[key], value, atol=atol, what=f"{what} {key}")


def _is_buffer(name):
    return name.endswith(("w_avg", "magnitude_ema", "transform", "freqs", "phases"))


def _assert_updates_near(actual, expected, initial, what):
    """Each tensor's update within 5% of its norm, all updates within 1% together."""
    total_diff = total_update = 0.0
    for name, e in expected.items():
        a, e = np.asarray(actual[name], np.float64), np.asarray(e, np.float64)
        diff, update = np.linalg.norm(a - e), np.linalg.norm(e - initial[name])
        assert diff <= 0.05 * update + 1e-6 * np.sqrt(e.size), (
            f"{what} {name}: |difference| {diff:.3g} for an update of norm {update:.3g}")
        total_diff, total_update = total_diff + diff**2, total_update + update**2
    assert np.sqrt(total_diff) <= 0.01 * np.sqrt(total_update), what


@pytest.mark.slow
def test_same_iterations_on_every_backend(trained):
    """The same weights and batches give the same G, D and G_ema on every backend.

    Iteration 0 (blur sigma 10, R1) must agree weight by weight. Adam's rare
    sign flips (see `_assert_updates_close`) then change the network that
    iteration 1 differentiates, so iteration 1 (sigma 6, no R1, EMA beta
    0.25) is compared by update norms, and by each backend's own EMA and
    step counts. The other backend (`other_backends`: every pair across the
    three CI jobs) also restores this backend's `.keras` file.
    """
    for i, step in enumerate(trained.steps):
        moved = max(np.abs(step.state[k] - trained.initial[k]).max()
                    for k in trained.initial if k.startswith(("G/", "D/")))
        assert moved > 1e-3, f"step {i} left the weights where they were"
    for backend in other_backends():
        out, restored_out = (str(trained.tmp / f"{backend}{s}.npz") for s in ("", "_restored"))
        # torch runs the step eagerly: one more step there costs little, and
        # checks that the restored model does not try to compile it.
        fit_batches = trained.batches_path if backend == "torch" else None
        run_python(
            "from tests.training.test_train_step import fit_from_reference\n"
            "from tests.training.test_train_step import restore_and_export\n"
            f"fit_from_reference({trained.weights!r}, {trained.batches_path!r}, {out!r}, "
            f"{GAN_KWARGS!r})\n"
            f"restore_and_export({trained.saved!r}, {restored_out!r}, {fit_batches!r})\n",
            backend)
        with np.load(out) as data:
            theirs = [{k[len(f"step{i}/"):]: data[k] for k in data.files
                       if k.startswith(f"step{i}/")} for i in range(len(trained.steps))]
        what = f"{backend} vs {keras.backend.backend()}"
        for i, step in enumerate(trained.steps):
            counters = {k[len("count/"):]: int(v) for k, v in theirs[i].items()
                        if k.startswith("count/")}
            assert counters == EXPECTED_COUNTERS[i], f"{what}, iteration {i}"
        weights = [{k: v for k, v in t.items() if not k.startswith("count/")} for t in theirs]
        # Iteration 0 moved each G weight by one Adam step, lr * g / (|g| + eps):
        # under 0.99 lr on either backend (|g| < 1e-6), the gradients' rounding
        # may move it differently (D's two steps count against the cap).
        sensitive = {k: np.minimum(np.abs(v - trained.initial[k]),
                                   np.abs(weights[0][k] - trained.initial[k])) < 0.99 * G_LR
                     for k, v in trained.steps[0].state.items() if k.startswith(("G/", "G_ema/"))}
        _assert_updates_close(weights[0], trained.steps[0].state, trained.initial, atol=1e-4,
                              rtol=1e-2, steps=2, what=f"{what}, iteration 0",
                              sensitive=sensitive)
        _assert_updates_near(weights[1], trained.steps[1].state, trained.initial,
                             what=f"{what}, iteration 1")
        for name in (k[len("G/"):] for k in weights[1] if k.startswith("G/")):
            g, ema = weights[1][f"G/{name}"], weights[1][f"G_ema/{name}"]
            if not _is_buffer(name):
                g = g + (weights[0][f"G_ema/{name}"] - g) * EMA_BETAS[1]
            assert_close(ema, g, atol=1e-6, rtol=F32_EPS, what=f"{what} G_ema/{name}")

        with np.load(restored_out) as data:
            restored = {k: data[k] for k in data.files}
        last = trained.steps[-1]
        _assert_states_equal({k: v for k, v in restored.items() if k in last.state},
                             last.state, 0.0, f"restored on {backend}")
        assert {k: int(restored[f"count/{k}"]) for k in last.counters} == last.counters
        for name in ("g_optimizer", "d_optimizer"):
            values = [restored[f"{name}/{i}"] for i in range(len(getattr(last, name)))]
            _assert_all_close(values, getattr(last, name), 0.0, f"{name} restored on {backend}")
        # Restored models compile with the library's default: XLA on JAX, on
        # TensorFlow only where a GPU or TPU is present, never on torch.
        assert bool(restored["jit_compile"]) == (
            backend == "jax" or bool(restored["accelerator"]))
        if fit_batches is not None:
            # Iteration 2 runs R1 again (r1_interval=2).
            assert {k: int(restored[f"after/{k}"]) for k in last.counters} == dict(
                images_seen=3 * N, iteration=3, g_steps=3, d_steps=5)


@pytest.mark.skipif(keras.config.backend() != "tensorflow",
                    reason="TensorFlow-specific by nature: its steps run as XLA programs or as "
                           "plain graphs (JAX always compiles with XLA, torch runs eager)")
def test_tensorflow_xla_step_equals_the_graph_step(trained):
    # On a CPU the default is the plain graph (`jit_compile_default`); with a
    # GPU or TPU, XLA. Both must take the same steps, to float rounding (compared as
    # across backends: weight by weight after the first, by update norms after
    # the second, which Adam's rare sign flips may have steered).
    # The fixture ran the default; here the other form.
    gan = build_gan(trained.weights, GAN_KWARGS)
    gan.compile(jit_compile=not trained.gan.jit_compile)
    states = []
    for batch in trained.batches:
        _fit(gan, batch)
        states.append(export_state(gan))
    assert export_counters(gan) == trained.steps[-1].counters
    _assert_updates_close(states[0], trained.steps[0].state, trained.initial, atol=1e-4,
                          rtol=1e-2, steps=2, what="XLA vs graph, iteration 0")
    _assert_updates_near(states[1], trained.steps[1].state, trained.initial,
                         what="XLA vs graph, iteration 1")


def test_save_and_restore(trained):
    gan = trained.gan
    last = trained.steps[-1]
    restored = keras.saving.load_model(trained.saved)
    assert isinstance(restored, AliasFreeGAN)
    _assert_states_equal(export_state(restored), last.state, 0.0, "restored")
    assert export_counters(restored) == last.counters
    assert restored.g_optimizer is not restored.d_optimizer
    for name, values in (("g_optimizer", last.g_optimizer), ("d_optimizer", last.d_optimizer)):
        variables = getattr(restored, name).variables
        assert [v.path for v in variables] == [v.path for v in getattr(gan, name).variables]
        _assert_all_close(_values(variables), values, 0.0, f"restored {name}")
    assert float(to_numpy(restored.d_optimizer.learning_rate)) == pytest.approx(D_LR * 2 / 3)

    batch = _batch(2)
    _fit(gan, batch)
    _fit(restored, batch)
    _assert_states_equal(export_state(restored), export_state(gan), 1e-6, "one more step")
    assert export_counters(restored) == export_counters(gan)
    for name in ("g_optimizer", "d_optimizer"):
        _assert_all_close(_values(getattr(restored, name).variables),
                          _values(getattr(gan, name).variables), 1e-6, f"{name} after a step")
