"""The same weights give the same results on every backend, compiled or eager."""

import keras
import numpy as np
import pytest

import keras_afgan
from keras_afgan.convert import discriminator_to_reference
from keras_afgan.convert import generator_to_reference
from tests.testing import assert_close
from tests.testing import other_backends
from tests.testing import run_python
from tests.testing import to_numpy

G_KWARGS = dict(z_dim=16, c_dim=3, w_dim=16, img_resolution=32, channel_base=1024,
                channel_max=32, conv_kernel=1, use_radial_filters=True, num_layers=8,
                margin_size=6)
D_KWARGS = dict(c_dim=3, img_resolution=32, channel_base=512, channel_max=32, conv_clamp=256)

_OTHER_BACKEND_SCRIPT = """
import numpy as np
import keras
from keras_afgan.convert import discriminator_from_reference, generator_from_reference
data = np.load({path!r})
G_kwargs, D_kwargs = {g_kwargs!r}, {d_kwargs!r}
G = generator_from_reference({{k[2:]: data[k] for k in data.files if k.startswith("G/")}}, **G_kwargs)
D = discriminator_from_reference({{k[2:]: data[k] for k in data.files if k.startswith("D/")}},
                                 epilogue_kwargs={{"mbstd_group_size": 2}}, **D_kwargs)
img = keras.ops.convert_to_numpy(G(data["z"], data["c"], truncation_psi=0.6))
logits = keras.ops.convert_to_numpy(D(data["real"], data["c"]))
np.savez({out!r}, img=img, logits=logits)
"""


@pytest.mark.slow
def test_same_weights_same_outputs_on_every_backend(tmp_path):
    """A subprocess on another backend (`other_backends`) loads the same weights and inputs."""
    G = keras_afgan.Generator(seed=5, **G_KWARGS)
    G.synthesis.input.transform.assign(
        np.array([[0.96, -0.28, 0.05], [0.28, 0.96, 0.1], [0, 0, 1]], dtype="float32"))
    D = keras_afgan.Discriminator(mbstd_group_size=2, **D_KWARGS)
    rng = np.random.default_rng(0)
    inputs = {
        "z": rng.standard_normal((4, 16)).astype("float32"),
        "c": np.eye(3, dtype="float32")[[0, 1, 2, 0]],
        "real": rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
    }
    arrays = {f"G/{k}": v for k, v in generator_to_reference(G).items()}
    arrays.update({f"D/{k}": v for k, v in discriminator_to_reference(D).items()})
    path = str(tmp_path / "weights.npz")
    np.savez(path, **arrays, **inputs)
    img = to_numpy(G(inputs["z"], inputs["c"], truncation_psi=0.6))
    logits = to_numpy(D(inputs["real"], inputs["c"]))
    assert np.std(img) > 1e-3  # a non-trivial image, so equality means something

    for backend in other_backends():
        out = str(tmp_path / f"{backend}.npz")
        run_python(_OTHER_BACKEND_SCRIPT.format(path=path, g_kwargs=G_KWARGS, d_kwargs=D_KWARGS,
                                                out=out), backend)
        with np.load(out) as theirs:
            assert_close(theirs["img"], img, atol=1e-5, what=f"images on {backend}")
            assert_close(theirs["logits"], logits, atol=1e-5, rtol=1e-5,
                         what=f"logits on {backend}")


def test_compiled_equals_eager():
    """`predict` runs the compiled function: XLA on TensorFlow, jax.jit on JAX.

    torch runs eager in keras_afgan (torch.compile cannot do the double
    backward R1 needs, and compiling takes minutes on CPU), so on torch this
    checks the `predict` path against direct calls.
    """
    jit = keras.backend.backend() != "torch"
    G = keras_afgan.Generator(seed=2, **G_KWARGS)
    D = keras_afgan.Discriminator(mbstd_group_size=2, **D_KWARGS)
    G.compile(jit_compile=jit)
    D.compile(jit_compile=jit)
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 16)).astype("float32")
    c = np.eye(3, dtype="float32")[[2, 1, 0, 2]]
    real = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    assert_close(G.predict((z, c), batch_size=4, verbose=0), G(z, c), atol=1e-5,
                 what="compiled G")
    assert_close(D.predict((real, c), batch_size=4, verbose=0), D(real, c), atol=1e-5,
                 what="compiled D")
