"""`keras_afgan.training.optimizers.Adam` is torch.optim.Adam's form, on every backend.

The expected weights come from Adam written out in numpy (float64) the way
torch computes it: epsilon added to the bias-corrected `sqrt(v_hat)`. The
same steps through `torch.optim.Adam` itself (torch is installed for every
backend's tests) agree too; Keras's own Adam, which adds epsilon to the
uncorrected `sqrt(v)`, does not (the difference the optimizer exists for).
"""

import keras
import numpy as np
import pytest

from keras_afgan.training.gan import default_optimizers
from keras_afgan.training.optimizers import Adam
from tests.testing import to_numpy

STEPS = 3


def _torch_form_adam(weights, grads, lr, beta_1, beta_2, eps):
    """numpy, float64: `w -= lr * m_hat / (sqrt(v_hat) + eps)` per step."""
    w = weights.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat, v_hat = m / (1 - beta_1**t), v / (1 - beta_2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((64,)).astype(np.float32)
    # Gradient magnitudes from 1e-10 to 1: around 1e-8 the placement of eps decides the step.
    scales = np.logspace(-10, 0, 64)
    grads = [(rng.standard_normal(64) * scales).astype(np.float32) for _ in range(STEPS)]
    return weights, grads


def _run(optimizer, weights, grads):
    variable = keras.Variable(weights)
    optimizer.build([variable])
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    return to_numpy(variable).astype(np.float64)


@pytest.mark.parametrize("network", ["G", "D"])
def test_default_adam_takes_torchs_steps(network):
    """The networks' default optimizers (D's with the lazy-R1 adjusted lr and beta_2)."""
    g_opt, d_opt = default_optimizers(r1_interval=16)
    optimizer = g_opt if network == "G" else d_opt
    assert isinstance(optimizer, Adam)
    lr = float(to_numpy(optimizer.learning_rate))
    weights, grads = _problem()
    expected = _torch_form_adam(weights, grads, lr, optimizer.beta_1, optimizer.beta_2,
                                optimizer.epsilon)
    actual = _run(optimizer, weights, grads)
    # float32 rounding of the weights and of a step of at most ~lr.
    tolerance = 4 * np.finfo(np.float32).eps * (np.abs(expected) + lr)
    assert np.all(np.abs(actual - expected) <= tolerance), np.abs(actual - expected).max()
    # Where the gradient is ~1e-8, Keras's form steps measurably differently.
    keras_form = _run(keras.optimizers.Adam(lr, beta_1=optimizer.beta_1, beta_2=optimizer.beta_2,
                                            epsilon=optimizer.epsilon), weights, grads)
    assert np.abs(keras_form - expected).max() > 100 * tolerance.max()


def test_agrees_with_torch_optim_adam():
    import torch  # installed for every backend's tests (it decodes reference pickles)

    weights, grads = _problem(seed=1)
    parameter = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float64))
    reference = torch.optim.Adam([parameter], lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    for g in grads:
        parameter.grad = torch.tensor(g, dtype=torch.float64)
        reference.step()
    expected = parameter.detach().numpy()
    np.testing.assert_allclose(_torch_form_adam(weights, grads, 0.0025, 0.0, 0.99, 1e-8),
                               expected, rtol=0, atol=1e-12)
    actual = _run(Adam(0.0025, beta_1=0.0, beta_2=0.99, epsilon=1e-8), weights, grads)
    np.testing.assert_allclose(actual, expected, rtol=0,
                               atol=4 * np.finfo(np.float32).eps * (np.abs(expected).max() + 1))


def test_round_trips_through_a_config():
    optimizer = Adam(0.001, beta_1=0.0, beta_2=0.97, epsilon=1e-7, name="adam_d")
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is Adam
    assert (restored.beta_2, restored.epsilon, restored.name) == (0.97, 1e-7, "adam_d")
