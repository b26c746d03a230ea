"""A StyleGAN2 pickle through afgan-convert, sampling and afgan-export, served
by TensorFlow alone, against the reference's images (shared/golden s32).

The pickle is stylegan2-ada-pytorch's layout (`synthesis_kwargs`), as
NVIDIA's published StyleGAN2-ADA models hold it. The SavedModel keeps its
signature names; the noise is the stored `noise_const`; `synthesis` takes
ws alone (a learned constant input has no transform to move).
"""

import json
import os

import numpy as np
import pytest

from keras_afgan.cli.convert import convert
from keras_afgan.cli.common import load_generator
from keras_afgan.models import StyleGAN2Generator
from keras_afgan.models.sampling import generate_images
from keras_afgan.models.sampling import seed_latents
from tests.conftest import GOLDEN_DIR
from tests.export.conftest import run_export_cli
from tests.export.tf_only import run_signatures
from tests.snapshot_writer import write_stylegan2_snapshot
from tests.testing import assert_close
from tests.testing import to_numpy


def _case():
    meta = json.loads((GOLDEN_DIR / "s32.json").read_text())
    with np.load(GOLDEN_DIR / "s32.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


def test_pickle_convert_generate_export_serve(tmp_path):
    meta, arrays = _case()
    state = {k[2:]: v for k, v in arrays.items() if k.startswith("G/")}
    source = write_stylegan2_snapshot(str(tmp_path / "network-snapshot.pkl"), state,
                                      meta["G_kwargs"], "ada")
    outdir = tmp_path / "models"
    written = convert(source, str(outdir))
    assert sorted(os.path.basename(p) for p in written) == ["G.keras", "G_ema.keras"]

    G = load_generator(str(outdir / "G_ema.keras"))
    assert isinstance(G, StyleGAN2Generator)
    # afgan-generate's images: the stored noise by default, one image per seed.
    seeds = [3, 7]
    images = generate_images(G, seeds, truncation_psi=0.7)
    expected = to_numpy(G(seed_latents(G, seeds), None, truncation_psi=0.7, noise_mode="const"))
    assert_close(images, expected, atol=1e-6, what="generate_images")
    with pytest.raises(ValueError, match="no input transform"):
        generate_images(G, seeds, translate=(0.1, 0.0))

    export_dir = tmp_path / "served" / "sg2" / "1"
    run_export_cli(f"--network={outdir / 'G_ema.keras'}", f"--outdir={export_dir}")
    z = arrays["in/z"]
    psi = np.full((len(z),), meta["truncation_psi"], np.float32)
    served, synthesized = run_signatures(str(tmp_path / "run"), [
        (str(export_dir), "serving_default", {"z": z, "truncation_psi": psi}),
        (str(export_dir), "synthesis", {"ws": arrays["out/ws"]}),
    ])
    golden = arrays["out/img_const"].transpose(0, 2, 3, 1)
    assert_close(served["images_float"], golden, atol=1e-4, what="served")  # as the golden tests
    assert_close(synthesized["images_float"], golden, atol=1e-4, what="synthesis signature")
