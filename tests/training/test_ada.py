"""ADA in the train step: what is augmented, and how p follows E[sign(D(real))].

As the reference's loss: D sees augmented fakes (Gmain, Dmain) and reals
(Dmain, R1, whose input gradient flows through the pipe), each call with its
own draws; every `ada_interval` iterations p moves by
`sign(rt - target) * batch * interval / (ada_kimg * 1000)`, clamped at 0,
`rt` the mean sign of the real logits of Dmain and R1 since the last move.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_afgan.augment import NUM_DRAWS
from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import preset_kwargs
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training.steps import backend_module
from tests.testing import run_compiled
from tests.testing import to_numpy

N = 4


def _gan(**kwargs):
    keras.utils.set_random_seed(0)
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16)
    D = Discriminator(img_resolution=16, channel_base=256, channel_max=16, mbstd_group_size=2)
    pipe = AugmentPipe(**preset_kwargs("bgc"), p=kwargs.pop("p", 0.5))
    return AliasFreeGAN(G, D, augment_pipe=pipe, **kwargs)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return {"images": rng.uniform(-1, 1, (N, 16, 16, 3)).astype("float32"),
            "latents": rng.standard_normal((N, 2, 8)).astype("float32"),
            "augment": rng.uniform(size=(N, 4, NUM_DRAWS)).astype("float32")}


def _close(actual, expected, what):
    np.testing.assert_allclose(to_numpy(actual), to_numpy(expected), rtol=1e-4, atol=1e-5,
                               err_msg=what)


def test_each_phase_augments_what_the_reference_augments():
    """Gmain's fakes, Dmain's reals and R1's reals each go through the pipe
    with their own draws; R1's input gradient flows through it. Compiled on
    JAX (`run_compiled`), eager elsewhere."""
    gan = _gan(r1_interval=4, r1_gamma=2.0)
    b = _batch(0)
    G, D, pipe = gan.generator, gan.discriminator, gan.augment_pipe
    steps = backend_module()

    def compute(z0, z1, real, u):
        out = {}
        out["expected_fake"] = D(pipe(G(z0), uniforms=u[:, 0]))
        _, out["fake"], _ = gan.phase_gmain(z0, None, augment=u)
        out["expected_real"] = D(pipe(real, uniforms=u[:, 2]))
        _, (_, _, _, out["real"]), _ = gan.phase_dmain(z1, real, None, augment=u)
        out["expected_dreg"] = D(pipe(real, uniforms=u[:, 3]))
        out["loss"], (out["penalty"], out["dreg"]), _ = gan.phase_dreg(real, None, augment=u)
        grad, _ = steps.input_gradient(
            lambda x: (ops.sum(D(pipe(x, uniforms=u[:, 3]))), ()), real)
        out["expected_penalty"] = ops.sum(ops.square(ops.stop_gradient(grad)), axis=(1, 2, 3))
        return out

    out = run_compiled(compute, gan.variables, *(ops.convert_to_tensor(x) for x in (
        b["latents"][:, 0], b["latents"][:, 1], b["images"], b["augment"])))
    out = {k: to_numpy(ops.stop_gradient(v)) for k, v in out.items()}
    _close(out["fake"], out["expected_fake"], "Gmain: D(augment(G(z)))")
    _close(out["real"], out["expected_real"], "Dmain: D(augment(real))")
    _close(out["dreg"], out["expected_dreg"], "Dreg: its own draws")
    assert not np.allclose(out["dreg"], out["real"])
    _close(out["penalty"], out["expected_penalty"], "R1 through the pipe")
    _close(out["loss"], np.mean(out["expected_penalty"]) * 2.0 / 2 * 4, "Dreg loss")


def test_p_follows_the_sign_of_the_real_logits():
    """`_count_signs` and `_adjust_augment_probability` against the rule in numpy."""
    target, interval, ada_kimg, batch = 0.6, 4, 0.05, 8
    gan = _gan(p=0.0, ada_target=target, ada_interval=interval, ada_kimg=ada_kimg)
    rng = np.random.default_rng(1)
    p, signs, count = 0.0, 0.0, 0
    step = batch * interval / (ada_kimg * 1000)
    moves = []
    for iteration in range(1, 17):
        for _ in range(1 + (iteration % 3 == 0)):  # Dmain, and some R1 phases
            # Windows of mostly negative (p clamped at 0), positive, positive,
            # then negative logits.
            offset = (-1.0, 3.0, 3.0, -1.0)[(iteration - 1) // interval]
            logits = (rng.normal(size=(batch, 1)) + offset).astype("float32")
            gan._count_signs(ops.convert_to_tensor(logits))
            signs, count = signs + np.sign(logits).sum(), count + logits.size
        gan.iteration.assign(iteration)
        gan._adjust_augment_probability(batch)
        if iteration % interval == 0:
            rt = signs / count
            p = max(p + np.sign(rt - target) * step, 0.0)
            moves.append(np.sign(rt - target))
            signs, count = 0.0, 0
            assert math.isclose(float(to_numpy(gan.ada_rt)), rt, abs_tol=1e-6)
        assert math.isclose(float(to_numpy(gan.augment_pipe.p)), p, abs_tol=1e-6), iteration
    assert moves == [-1, 1, 1, -1]  # down at 0 (clamped), up, up, down

    fixed = _gan(p=0.3)  # no ada_target: p never moves, no sums kept
    fixed._count_signs(ops.ones((batch, 1)))
    fixed.iteration.assign(interval)
    fixed._adjust_augment_probability(batch)
    assert float(to_numpy(fixed.augment_pipe.p)) == pytest.approx(0.3)
    assert float(to_numpy(fixed.ada_signs)) == float(to_numpy(fixed.ada_count)) == 0.0


class _Logs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({k: float(v) for k, v in logs.items()})


def test_fit_moves_p_every_interval_and_checkpoints_keep_it(tmp_path):
    """`fit`: under ADA p moves at iterations 4 and 8 by the rule (from the
    logged rt) and stays between. A saved model restores p and ADA's running
    sums."""
    target, ada_kimg = 0.6, 0.08
    gan = _gan(p=0.0, r1_interval=2, ada_target=target, ada_kimg=ada_kimg)
    gan.compile()
    iterations = 8
    data = [_batch(seed) for seed in range(iterations)]
    batches = {k: np.concatenate([b[k] for b in data]) for k in data[0]}
    logs = _Logs()
    gan.fit(batches, batch_size=N, epochs=1, shuffle=False, verbose=0, callbacks=[logs])
    ps = [s["augment_p"] for s in logs.steps]
    assert len(ps) == iterations
    step = N * 4 / (ada_kimg * 1000)
    previous = 0.0
    for i, s in enumerate(logs.steps, start=1):
        expected = previous
        if i % 4 == 0:
            expected = max(previous + np.sign(s["rt"] - target) * step, 0.0)
        assert s["augment_p"] == pytest.approx(expected, abs=1e-6), (i, logs.steps)
        previous = s["augment_p"]
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    restored = keras.saving.load_model(path)
    for name in ("p", "ada_signs", "ada_count", "ada_rt"):
        source = gan.augment_pipe if name == "p" else gan
        copy = restored.augment_pipe if name == "p" else restored
        assert float(to_numpy(getattr(copy, name))) == float(to_numpy(getattr(source, name)))
    assert restored.ada_target == gan.ada_target and restored.ada_kimg == gan.ada_kimg


def test_ada_needs_a_pipe():
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=16)
    D = Discriminator(img_resolution=16, channel_base=256, channel_max=16)
    with pytest.raises(ValueError, match="augment_pipe"):
        AliasFreeGAN(G, D, ada_target=0.6)
