"""ONNX export (tf2onnx) checked in onnxruntime against the Keras generator.

Runs on every backend: the model is traced on TensorFlow (other backends
export through a TensorFlow subprocess), from a generator trained on the
current backend.
"""

import numpy as np
import onnxruntime
import pytest

from keras_afgan.export import export_onnx
from tests.conftest import GOLDEN_CASES
from tests.conftest import golden_case
from tests.export.conftest import run_export_cli
from tests.export.test_saved_model import _assert_images
from tests.export.test_saved_model import _keras_images
from tests.export.test_saved_model import _latents


def _run(session, inputs):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


@pytest.fixture(scope="module")
def onnx_session(trained, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("onnx") / "afgan" / "1"
    result = run_export_cli(f"--network={trained.generator_path}", f"--outdir={outdir}",
                            "--format=onnx")
    assert "model.onnx" in result.stdout
    return onnxruntime.InferenceSession(str(outdir / "model.onnx"))


def test_onnx_signature(trained, onnx_session):
    G = trained.G
    inputs = {i.name: (i.type, i.shape) for i in onnx_session.get_inputs()}
    outputs = {o.name: (o.type, o.shape) for o in onnx_session.get_outputs()}
    assert inputs == {"z": ("tensor(float)", ["N", G.z_dim]), "c": ("tensor(float)", ["N", G.c_dim]),
                      "truncation_psi": ("tensor(float)", ["N"])}
    r = G.img_resolution
    assert outputs == {"images": ("tensor(uint8)", ["N", r, r, 3]),
                       "images_float": ("tensor(float)", ["N", r, r, 3])}
    meta = onnx_session.get_modelmeta().custom_metadata_map
    assert meta["z_dim"] == str(G.z_dim) and meta["c_dim"] == str(G.c_dim)


@pytest.mark.parametrize("n", [1, 5])
def test_onnx_matches_keras(trained, onnx_session, n):
    z, c, psi = _latents(trained.G, n)
    outputs = _run(onnx_session, {"z": z, "c": c, "truncation_psi": psi})
    _assert_images(outputs, _keras_images(trained.G, z, c, psi), f"onnx N={n}")


def test_onnx_rejects_a_wrong_width(trained, onnx_session):
    z, c, psi = _latents(trained.G, 2)
    with pytest.raises(Exception, match=r"(?s)invalid dimensions for input: z.*Got: 7 Expected: 8"):
        onnx_session.run(None, {"z": z[:, :7], "c": c, "truncation_psi": psi})


# One golden case (the conditional one with a stored transform when present): each
# ONNX conversion takes several seconds.
GOLDEN_ONNX_CASE = "r32c" if "r32c" in GOLDEN_CASES else GOLDEN_CASES[0]


def test_golden_images_through_onnx(tmp_path):
    case = golden_case(GOLDEN_ONNX_CASE)
    path = export_onnx(case.generator(), str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(path)
    z, c = case.arrays["in/z"], case.arrays["in/c"]
    inputs = {"z": z, "truncation_psi": np.full((len(z),), case.meta["truncation_psi"], np.float32)}
    if c.shape[1]:
        inputs["c"] = c
    # ~10x the error measured against the reference (2.5e-7).
    _assert_images(_run(session, inputs), case.nhwc("out/img"), f"{case.name} onnx", atol=5e-6)
