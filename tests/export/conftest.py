"""A generator trained on the current backend, saved as training saves it.

The export tests run on every backend, so the SavedModel / ONNX paths are
checked for generators trained on TensorFlow, on JAX and on torch.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.testing import REPO_ROOT

# Conditional (c_dim 2) so the `c` input is exercised; 16 px keeps it fast.
G_KWARGS = dict(z_dim=8, w_dim=8, c_dim=2, img_resolution=16, channel_base=256, channel_max=16,
                seed=3)
D_KWARGS = dict(c_dim=2, img_resolution=16, channel_base=256, channel_max=16, mbstd_group_size=2)
N = 4


class Trained:
    """`gan` after one `fit` iteration; `generator_path` holds its G-EMA, as training writes it."""

    def __init__(self, gan, generator_path, checkpoint_path):
        self.gan = gan
        self.G = gan.generator_ema
        self.generator_path = generator_path
        self.checkpoint_path = checkpoint_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from keras_afgan.models import Discriminator
    from keras_afgan.models import Generator
    from keras_afgan.training import AliasFreeGAN

    rng = np.random.default_rng(0)
    batch = {
        "images": rng.uniform(-1, 1, (N, 16, 16, 3)).astype("float32"),
        "labels": np.eye(2, dtype="float32")[[0, 1, 1, 0]],
        "latents": rng.standard_normal((N, 2, 8)).astype("float32"),
    }
    gan = AliasFreeGAN(Generator(**G_KWARGS), Discriminator(**D_KWARGS), r1_interval=2,
                       ema_kimg=0.01, seed=0)
    gan.compile()
    gan.fit(batch, batch_size=N, epochs=1, shuffle=False, verbose=0)
    outdir = tmp_path_factory.mktemp(f"trained_{keras.config.backend()}")
    generator_path = str(outdir / "generator.keras")
    checkpoint_path = str(outdir / "checkpoint.keras")
    gan.generator_ema.save(generator_path)
    gan.save(checkpoint_path)
    return Trained(gan, generator_path, checkpoint_path)


def run_export_cli(*args, backend=None, check=True):
    """`python -m keras_afgan.cli.export ARGS` under `backend` (default: the current one)."""
    env = dict(os.environ, KERAS_BACKEND=backend or keras.config.backend(),
               TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "keras_afgan.cli.export", *args], env=env,
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"afgan-export {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def trained_export(trained, tmp_path_factory):
    """`afgan-export` of the trained generator file: MODEL_BASE/afgan/1."""
    outdir = str(tmp_path_factory.mktemp("exported") / "afgan" / "1")
    result = run_export_cli(f"--network={trained.generator_path}", f"--outdir={outdir}")
    return outdir, result.stdout
