"""examples/serving_client.py: request building, and gRPC / REST against a stand-in server.

TF Serving itself cannot be installed here; `serving_stub.SavedModelServer`
answers the same protos (gRPC) and JSON (REST) from the exported SavedModel.
Backend-neutral (the client never imports Keras), so it runs under every
backend's CI job like the rest of the suite.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_afgan.models.sampling import generate_images
from tests.export.serving_stub import SavedModelServer
from tests.export.test_saved_model import _assert_images
from tests.export.test_saved_model import _keras_images
from tests.export.test_saved_model import _latents
from tests.testing import REPO_ROOT
from tests.testing import reference_uint8

CLIENT_PATH = os.path.join(REPO_ROOT, "examples", "serving_client.py")


def _load_client():
    spec = importlib.util.spec_from_file_location("serving_client", CLIENT_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = _load_client()


@pytest.fixture(scope="module")
def server(trained_export):
    export_dir, _ = trained_export
    server = SavedModelServer("afgan", export_dir)
    server.grpc_address = server.start_grpc()
    server.rest_url = server.start_rest()
    yield server
    server.stop()


def test_generator_inputs_are_checked_and_psi_broadcast():
    inputs = client.generator_inputs(np.zeros((3, 8)), np.eye(2)[[0, 1, 0]], 0.5)
    assert {k: (v.dtype, v.shape) for k, v in inputs.items()} == {
        "z": (np.float32, (3, 8)), "c": (np.float32, (3, 2)), "truncation_psi": (np.float32, (3,))}
    np.testing.assert_array_equal(inputs["truncation_psi"], [0.5, 0.5, 0.5])
    assert "c" not in client.generator_inputs(np.zeros((1, 8)))
    for args, message in [
        ((np.zeros(8),), r"Expected z of shape \[N, z_dim\]. Received shape: \(8,\)"),
        ((np.zeros((3, 8)), np.zeros((2, 2))), r"Expected c of shape \[3, c_dim\]"),
        ((np.zeros((3, 8)), None, [1.0, 1.0]), r"Expected truncation_psi .* \[3\]. Received shape: \(2,\)"),
        ((np.full((1, 8), np.nan),), "Expected z to be finite"),
        ((np.array([["a"]]),), "Expected z to hold numbers"),
    ]:
        with pytest.raises(ValueError, match=message):
            client.generator_inputs(*args)


def test_check_inputs_against_a_signature():
    signature = {"z": (np.float32, (-1, 8)), "truncation_psi": (np.float32, (-1,))}
    good = client.generator_inputs(np.zeros((2, 8)))
    client.check_inputs(good, signature)
    with pytest.raises(ValueError, match=r"Expected z of shape \[-1, 8\] \(-1: any\). Received: \[2, 7\]"):
        client.check_inputs(client.generator_inputs(np.zeros((2, 7))), signature)
    with pytest.raises(ValueError, match=r"Missing: \[\]; unexpected: \['c'\]"):
        client.check_inputs(client.generator_inputs(np.zeros((2, 8)), np.zeros((2, 1))), signature)
    with pytest.raises(ValueError, match="Expected z of dtype"):
        client.check_inputs({**good, "z": good["z"].astype(np.float64)}, signature)


def test_predict_request_carries_the_inputs():
    import tensorflow as tf

    inputs = client.generator_inputs(np.arange(16, dtype=np.float64).reshape(2, 8), None, [0.5, 1])
    request = client.build_predict_request("afgan", inputs, "mapping", version=3)
    assert (request.model_spec.name, request.model_spec.signature_name) == ("afgan", "mapping")
    assert request.model_spec.version.value == 3
    assert set(request.inputs) == {"z", "truncation_psi"}
    for name, value in inputs.items():
        assert request.inputs[name].dtype == tf.float32.as_datatype_enum
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs[name]), value)
    body = json.loads(client.rest_request_body(inputs, "mapping"))
    assert body["signature_name"] == "mapping"
    np.testing.assert_array_equal(body["inputs"]["z"], inputs["z"])
    np.testing.assert_array_equal(body["inputs"]["truncation_psi"], [0.5, 1.0])


def test_grpc_round_trip_matches_keras(trained, server):
    grpc_client = client.GrpcClient(server.grpc_address)
    G = trained.G
    signature = grpc_client.signature("afgan")
    assert signature == {"z": (np.float32, (-1, G.z_dim)), "c": (np.float32, (-1, G.c_dim)),
                         "truncation_psi": (np.float32, (-1,))}
    z, c, psi = _latents(G, 3, seed=7)
    inputs = client.generator_inputs(z, c, psi)
    client.check_inputs(inputs, signature)
    outputs = grpc_client.predict("afgan", inputs)
    _assert_images(outputs, _keras_images(G, z, c, psi), "gRPC")
    assert server.requests[-1][:2] == ("afgan", "serving_default")


def test_grpc_errors_reach_the_client(server):
    import grpc

    grpc_client = client.GrpcClient(server.grpc_address)
    inputs = client.generator_inputs(np.zeros((2, 8)), np.zeros((2, 2)))
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict("other", inputs)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict("afgan", client.generator_inputs(np.zeros((2, 7)), np.zeros((2, 2))))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expected input z of shape [N, 8]" in error.value.details()


def test_rest_round_trip_matches_keras(trained, server):
    G = trained.G
    signature = client.rest_signature(server.rest_url, "afgan")
    assert signature == {"z": (np.float32, (-1, G.z_dim)), "c": (np.float32, (-1, G.c_dim)),
                         "truncation_psi": (np.float32, (-1,))}
    z, c, psi = _latents(G, 2, seed=8)
    outputs = client.rest_predict(server.rest_url, "afgan", client.generator_inputs(z, c, psi))
    _assert_images(outputs, _keras_images(G, z, c, psi), "REST")


def test_client_script_writes_the_seed_images(trained, server, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, CLIENT_PATH, f"--server={server.grpc_address}", "--model=afgan",
         "--seeds=4-5", "--class_idx=1", "--trunc=0.7", f"--outdir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = reference_uint8(generate_images(trained.G, [4, 5], truncation_psi=0.7, class_idx=1))
    for seed, image in zip([4, 5], expected):
        served = np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png"))
        assert np.abs(served.astype(int) - image).max() <= 1


def test_models_config_example_parses_as_tf_serving_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(os.path.join(REPO_ROOT, "examples", "serving", "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    models = {c.name: c for c in config.model_config_list.config}
    assert set(models) == {"afgan", "afgan_textures"}
    for name, model in models.items():
        assert model.base_path == f"/models/{name}" and model.model_platform == "tensorflow"
