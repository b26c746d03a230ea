"""Test helpers shared by the test modules."""

import os
import subprocess
import sys

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")


def other_backends():
    """The backends a cross-backend test compares the current one with.

    The next one in the cycle tensorflow -> jax -> torch -> tensorflow, so the
    three CI jobs (one per backend) compare every pair once between them;
    KERAS_AFGAN_TEST_ALL_PAIRS=1 compares with both others.
    """
    import keras

    here = BACKENDS.index(keras.config.backend())
    if os.environ.get("KERAS_AFGAN_TEST_ALL_PAIRS") == "1":
        return tuple(b for b in BACKENDS if b != BACKENDS[here])
    return (BACKENDS[(here + 1) % len(BACKENDS)],)


def reference_uint8(images):
    """The reference's pixel conversion, written out in numpy for tests:
    `floor(img * 127.5 + 128)` clipped to [0, 255]."""
    return np.clip(np.floor(np.asarray(images, np.float32) * 127.5 + 128), 0, 255).astype(np.uint8)


def to_numpy(x):
    if hasattr(x, "detach"):  # a torch tensor that requires grad
        x = x.detach()
    return np.asarray(keras.ops.convert_to_numpy(x))


def assert_close(actual, expected, atol=0.0, rtol=0.0, what=""):
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bound = atol + rtol * np.abs(expected.astype(np.float64))
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), (
        f"{what}: max abs error {err.max():.3g} (at {np.unravel_index(worst, err.shape)}: "
        f"{actual.flat[worst]!r} vs {expected.flat[worst]!r}), atol={atol}, rtol={rtol}"
    )


def python_env(backend, env=None):
    """The environment of a fresh interpreter under `backend` that imports this repo."""
    full_env = dict(os.environ)
    full_env.update({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
                     "PYTHONPATH": REPO_ROOT + os.pathsep + full_env.get("PYTHONPATH", "")})
    full_env.update(env or {})
    return full_env


def run_python(code, backend, timeout=600, env=None):
    """Run `code` in a fresh interpreter under `backend`; return stdout."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=python_env(backend, env), timeout=timeout, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise AssertionError(
            f"Subprocess under {backend} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def run_compiled(fn, state, *args):
    """`fn(*args)`, compiled once with `jax.jit` on JAX; called as is elsewhere.

    JAX runs code outside `jit` op by op, compiling every primitive for every
    new shape: the golden training phases took minutes that way. `state` is
    every variable `fn` reads or assigns; assignments are applied afterwards.
    TensorFlow and torch run `fn` eagerly, as a user's code would.
    """
    if keras.config.backend() != "jax":
        return fn(*args)
    import jax
    from keras.src.backend.common.stateless_scope import StatelessScope

    from keras_afgan.training.steps.jax import _unique

    variables = _unique(state)

    def pure(values, args):
        with StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            outputs = fn(*args)
        return outputs, [scope.get_current_value(v) for v in variables]

    outputs, values = jax.jit(pure)([v.value for v in variables], args)
    for variable, value in zip(variables, values):
        variable.assign(value)
    return outputs
