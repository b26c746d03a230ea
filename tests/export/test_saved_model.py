"""SavedModel export: the signatures, parity in a TensorFlow-only process, golden images.

Runs on every backend: the generator is trained on the current backend and
exported by `afgan-export` (traced on TF or JAX; a torch run re-runs itself
on TensorFlow). The SavedModel is then run in a fresh interpreter where
keras, keras_afgan, jax and torch cannot be imported.
"""

import os
import re
import subprocess

import numpy as np
import pytest

from keras_afgan.export import export_saved_model
from keras_afgan.models.transforms import set_content_transform
from tests.export.tf_only import run_signatures
from tests.testing import assert_close
from tests.testing import reference_uint8
from tests.testing import to_numpy

PSI = np.array([1.0, 0.7, 0.5, 0.9, 0.6], np.float32)


def _latents(G, n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, G.z_dim)).astype(np.float32)
    c = np.eye(G.c_dim, dtype=np.float32)[np.arange(n) % G.c_dim]
    return z, c, PSI[:n].copy()


def _keras_images(G, z, c, psi):
    # One sample at a time with a Python-number psi: not the signature's [N]-psi path.
    return np.concatenate([to_numpy(G(z[i:i + 1], c[i:i + 1], truncation_psi=float(psi[i])))
                           for i in range(len(z))])


def _keras_ws(G, z, c, psi):
    return np.concatenate([to_numpy(G.mapping(z[i:i + 1], c[i:i + 1], truncation_psi=float(psi[i])))
                           for i in range(len(z))])


def _assert_images(outputs, expected, what, atol=1e-4):
    assert outputs["images_float"].dtype == np.float32 and outputs["images"].dtype == np.uint8
    assert_close(outputs["images_float"], expected, atol=atol, what=f"{what} images_float")
    steps = np.abs(outputs["images"].astype(int) - reference_uint8(expected).astype(int))
    assert steps.max() <= 1, f"{what} images: {steps.max()} uint8 steps from Keras"


@pytest.mark.parametrize("n", [1, 5])
def test_serving_default_and_mapping_match_keras_in_a_tensorflow_only_process(
        trained, trained_export, tmp_path, n):
    export_dir, _ = trained_export
    G = trained.G
    z, c, psi = _latents(G, n)
    inputs = {"z": z, "c": c, "truncation_psi": psi}
    served, mapped = run_signatures(str(tmp_path), [
        (export_dir, "serving_default", inputs), (export_dir, "mapping", inputs)])
    _assert_images(served, _keras_images(G, z, c, psi), f"serving_default N={n}")
    assert_close(mapped["ws"], _keras_ws(G, z, c, psi), atol=1e-5, what="mapping ws")


def test_synthesis_translate_and_rotate_move_content_like_the_keras_transform(
        trained, trained_export, tmp_path):
    export_dir, _ = trained_export
    G = trained.G
    z, c, psi = _latents(G, 3, seed=1)
    ws = _keras_ws(G, z, c, psi)
    translate = np.array([[0.0, 0.0], [0.1, -0.05], [0.25, 0.125]], np.float32)
    rotate = np.array([0.0, 15.0, -30.0], np.float32)
    expected = []
    try:
        for i in range(3):
            set_content_transform(G, translate[i], rotate[i])
            expected.append(to_numpy(G.synthesis(ws[i:i + 1])))
    finally:
        set_content_transform(G)
    (moved,) = run_signatures(str(tmp_path), [
        (export_dir, "synthesis", {"ws": ws, "translate": translate, "rotate": rotate})])
    _assert_images(moved, np.concatenate(expected), "synthesis")
    # Zero translate/rotate is the plain synthesis; the others did move.
    assert_close(moved["images_float"][0], to_numpy(G.synthesis(ws[:1]))[0], atol=1e-4)
    assert np.abs(moved["images_float"][1:] - to_numpy(G.synthesis(ws[1:]))).max() > 1e-2


def test_golden_images_through_the_saved_model(case, tmp_path):
    export_dir = export_saved_model(case.generator(), str(tmp_path / "golden" / "1"))
    z, c = case.arrays["in/z"], case.arrays["in/c"]
    n = len(z)
    psi = np.full((n,), case.meta["truncation_psi"], np.float32)
    latents = {"z": z, "truncation_psi": psi}
    if c.shape[1]:
        latents["c"] = c
    served, mapped, synthesized = run_signatures(str(tmp_path / "run"), [
        (export_dir, "serving_default", latents),
        (export_dir, "mapping", latents),
        (export_dir, "synthesis", {"ws": case.arrays["out/ws"],
                                   "translate": np.zeros((n, 2), np.float32),
                                   "rotate": np.zeros((n,), np.float32)}),
    ])
    golden = case.nhwc("out/img")
    # ~10x the largest error measured against the reference (1.2e-6).
    _assert_images(served, golden, f"{case.name} serving_default", atol=2e-5)
    assert_close(mapped["ws"], case.arrays["out/ws"], atol=1e-5, what=f"{case.name} ws")
    _assert_images(synthesized, golden, f"{case.name} synthesis", atol=2e-5)


def _show_signatures(text):
    """Parse `saved_model_cli show --all`: {signature: {"inputs"/"outputs": {name: (dtype, shape)}}}."""
    signatures = {}
    for block in re.split(r"\nsignature_def\['", text)[1:]:
        name = block.split("'", 1)[0]
        parsed = {"inputs": {}, "outputs": {}}
        for kind, key, dtype, shape in re.findall(
                r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([-\d, ]*)\)",
                block):
            parsed[kind][key] = (dtype, tuple(int(d) for d in shape.split(",") if d.strip()))
        signatures[name] = parsed
    return signatures


def test_saved_model_cli_lists_the_three_signatures(trained, trained_export):
    export_dir, _ = trained_export
    G = trained.G
    text = subprocess.run(["saved_model_cli", "show", "--all", "--dir", export_dir],
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout
    signatures = _show_signatures(text)
    r, latent = G.img_resolution, {"z": ("DT_FLOAT", (-1, G.z_dim)),
                                   "c": ("DT_FLOAT", (-1, G.c_dim)),
                                   "truncation_psi": ("DT_FLOAT", (-1,))}
    images = {"images": ("DT_UINT8", (-1, r, r, 3)), "images_float": ("DT_FLOAT", (-1, r, r, 3))}
    assert signatures["serving_default"] == {"inputs": latent, "outputs": images}
    assert signatures["mapping"] == {
        "inputs": latent, "outputs": {"ws": ("DT_FLOAT", (-1, G.num_ws, G.w_dim))}}
    assert signatures["synthesis"] == {
        "inputs": {"ws": ("DT_FLOAT", (-1, G.num_ws, G.w_dim)), "translate": ("DT_FLOAT", (-1, 2)),
                   "rotate": ("DT_FLOAT", (-1,))},
        "outputs": images}
    assert set(signatures) - {"__saved_model_init_op"} == {"serving_default", "mapping", "synthesis"}


def test_saved_model_cli_run_matches_keras(trained, trained_export, tmp_path):
    # saved_model_cli runs the graph through a TF1 Session, as TF Serving does.
    export_dir, _ = trained_export
    z, c, psi = _latents(trained.G, 2, seed=2)
    for name, value in (("z", z), ("c", c), ("psi", psi)):
        np.save(tmp_path / f"{name}.npy", value)
    subprocess.run(
        ["saved_model_cli", "run", "--dir", export_dir, "--tag_set", "serve",
         "--signature_def", "serving_default", "--outdir", str(tmp_path / "out"),
         "--inputs", f"z={tmp_path}/z.npy;c={tmp_path}/c.npy;truncation_psi={tmp_path}/psi.npy"],
        capture_output=True, text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    outputs = {k: np.load(tmp_path / "out" / f"{k}.npy") for k in ("images", "images_float")}
    _assert_images(outputs, _keras_images(trained.G, z, c, psi), "saved_model_cli run")


def test_export_is_a_tf_serving_version_directory(trained_export):
    export_dir, stdout = trained_export
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(export_dir, "variables", "variables.index"))
    # Written beside the version directory, then moved: nothing half-written is left.
    assert os.listdir(os.path.dirname(export_dir)) == ["1"]
    assert "serving_default: z float32 [N, 8], c float32 [N, 2], truncation_psi float32 [N]" in stdout
    assert "tensorflow/serving" in stdout


def _zeros(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


BAD_INPUTS = [
    ("serving_default", dict(z=_zeros(5, 1, 8), c=_zeros(5, 2), truncation_psi=_zeros(5)),
     r"Expected input z of shape \[N, 8\] \(rank 2\). Received shape:\] \[5 1 8\]"),
    ("serving_default", dict(z=_zeros(5, 7), c=_zeros(5, 2), truncation_psi=_zeros(5)),
     r"Expected input z of shape \[N, 8\].*Received shape:\] \[5 7\]"),
    ("serving_default", dict(z=_zeros(5, 8), c=_zeros(5, 3), truncation_psi=_zeros(5)),
     r"Expected input c of shape \[N, 2\].*Received shape:\] \[5 3\]"),
    ("serving_default", dict(z=_zeros(5, 8), c=_zeros(5, 2), truncation_psi=_zeros(4)),
     r"Expected input truncation_psi of shape \[N\], N being the batch size of z "
     r"\(\] \[5\] \[\). Received shape:\] \[4\]"),
    ("synthesis", dict(ws=_zeros(2, 16, 8), translate=_zeros(2, 3), rotate=_zeros(2)),
     r"Expected input translate of shape \[N, 2\].*Received shape:\] \[2 3\]"),
    ("synthesis", dict(ws=_zeros(2, 15, 8), translate=_zeros(2, 2), rotate=_zeros(2)),
     r"Expected input ws of shape \[N, 16, 8\].*Received shape:\] \[2 15 8\]"),
    ("mapping", dict(z=_zeros(2, 8, dtype=np.float64), c=_zeros(2, 2), truncation_psi=_zeros(2)),
     r"expected to be a float tensor but is a double tensor"),
    ("mapping", dict(z=_zeros(2, 8, dtype=np.int32), c=_zeros(2, 2), truncation_psi=_zeros(2)),
     r"expected to be a float tensor but is a int32 tensor"),
]


def test_bad_inputs_to_a_signature_fail_clearly(trained, trained_export, tmp_path):
    export_dir, _ = trained_export
    assert trained.G.num_ws == 16  # the shapes above
    errors = run_signatures(str(tmp_path), [(export_dir, sig, inputs)
                                            for sig, inputs, _ in BAD_INPUTS])
    for (signature, inputs, message), error in zip(BAD_INPUTS, errors):
        shapes = {k: (v.shape, v.dtype.name) for k, v in inputs.items()}
        assert isinstance(error, str), f"{signature} accepted {shapes}"
        assert re.search(message, error), f"{signature} {shapes}: {error}"


def test_one_bad_request_spoils_only_its_own_row_and_an_empty_batch_is_empty(
        trained, trained_export, tmp_path):
    """TF Serving batches requests: one NaN z row, or one NaN truncation psi,
    leaves every other row of the batch as it would be alone; N = 0 answers
    an empty batch of the right shape from every signature."""
    export_dir, _ = trained_export
    G = trained.G
    z, c, psi = _latents(G, 5, seed=1)
    z[1] = np.nan
    psi[3] = np.nan
    empty = {"z": np.zeros((0, G.z_dim), np.float32), "c": np.zeros((0, G.c_dim), np.float32),
             "truncation_psi": np.zeros((0,), np.float32)}
    served, mapped_empty, served_empty, synthesis_empty = run_signatures(str(tmp_path), [
        (export_dir, "serving_default", {"z": z, "c": c, "truncation_psi": psi}),
        (export_dir, "mapping", empty), (export_dir, "serving_default", empty),
        (export_dir, "synthesis", {"ws": np.zeros((0, G.num_ws, G.w_dim), np.float32),
                                   "translate": np.zeros((0, 2), np.float32),
                                   "rotate": np.zeros((0,), np.float32)})])
    for result in (served, mapped_empty, served_empty, synthesis_empty):
        assert isinstance(result, dict), result  # not an error message
    good = [0, 2, 4]
    assert np.isnan(served["images_float"][[1, 3]]).all()
    _assert_images({k: v[good] for k, v in served.items()},
                   _keras_images(G, z[good], c[good], psi[good]), "rows beside NaN rows")
    r = G.img_resolution
    assert mapped_empty["ws"].shape == (0, G.num_ws, G.w_dim)
    assert served_empty["images"].shape == served_empty["images_float"].shape == (0, r, r, 3)
    assert synthesis_empty["images"].shape == (0, r, r, 3)
