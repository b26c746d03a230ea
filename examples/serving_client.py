"""Request images from a keras_afgan generator served by TF Serving (gRPC or REST).

Export and serve first (see the README's "Export and serving" section):

    afgan-export --network=runs/tiny/generator.keras --outdir=exported/afgan/1
    docker run --rm -p 8500:8500 -p 8501:8501 -v "$PWD/exported/afgan:/models/afgan" \\
        -e MODEL_NAME=afgan tensorflow/serving

then, on any machine with numpy, tensorflow and tensorflow-serving-api
(`pip install tensorflow-serving-api`; beside tensorflow-cpu use
`pip install --no-deps tensorflow-serving-api`, it needs only grpcio and protobuf
besides TensorFlow):

    python examples/serving_client.py --server=localhost:8500 --model=afgan --seeds=0-3 --outdir=out
    python examples/serving_client.py --rest=http://localhost:8501 --model=afgan --seeds=0-3 --outdir=out

z is drawn per seed as `afgan-generate` draws it, so the images match. The
client reads z_dim and c_dim from the served signature (model metadata), and
checks what it sends before sending it. Copy this file freely: it does not
import keras_afgan.
"""

import argparse
import json
import os
import urllib.request

import numpy as np

SIGNATURE = "serving_default"


def latents(seeds, z_dim):
    """`[len(seeds), z_dim]` float32 z, one `RandomState(seed)` draw per seed (as afgan-generate)."""
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32)


def generator_inputs(z, c=None, truncation_psi=1.0):
    """The `serving_default` inputs as float32 arrays, checked.

    Args:
        z: `[N, z_dim]` latents.
        c: `[N, c_dim]` one-hot labels for a conditional model, else None.
        truncation_psi: a number or `[N]` values.

    Returns:
        `{"z": ..., "c": ... (only when given), "truncation_psi": [N]}`.
    """
    z = _float32("z", z)
    if z.ndim != 2:
        raise ValueError(f"Expected z of shape [N, z_dim]. Received shape: {z.shape}")
    n = z.shape[0]
    inputs = {"z": z}
    if c is not None:
        c = _float32("c", c)
        if c.ndim != 2 or c.shape[0] != n:
            raise ValueError(f"Expected c of shape [{n}, c_dim]. Received shape: {c.shape}")
        inputs["c"] = c
    psi = _float32("truncation_psi", truncation_psi)
    if psi.ndim == 0:
        psi = np.full((n,), psi, np.float32)
    if psi.shape != (n,):
        raise ValueError(
            f"Expected truncation_psi to be a number or of shape [{n}]. Received shape: {psi.shape}")
    inputs["truncation_psi"] = psi
    return inputs


def check_inputs(inputs, signature):
    """Check `inputs` against a signature `{name: (dtype, shape)}` (shape dims -1 = any)."""
    missing = sorted(set(signature) - set(inputs))
    extra = sorted(set(inputs) - set(signature))
    if missing or extra:
        raise ValueError(
            f"Expected inputs {sorted(signature)}. Missing: {missing}; unexpected: {extra}")
    for name, (dtype, shape) in signature.items():
        value = inputs[name]
        if value.dtype != np.dtype(dtype):
            raise ValueError(f"Expected {name} of dtype {dtype}. Received: {value.dtype}")
        if len(value.shape) != len(shape) or any(
                want not in (-1, got) for want, got in zip(shape, value.shape)):
            raise ValueError(
                f"Expected {name} of shape {list(shape)} (-1: any). Received: {list(value.shape)}")


def _float32(name, value):
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"Expected {name} to hold numbers. Received dtype: {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Expected {name} to be finite. Received non-finite values.")
    return array.astype(np.float32)


# gRPC (tensorflow-serving-api)


def build_predict_request(model, inputs, signature_name=SIGNATURE, version=None):
    """A `PredictRequest` for `model` carrying `inputs` (name -> array)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def build_metadata_request(model, version=None):
    """A `GetModelMetadataRequest` for the model's signatures."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = int(version)
    request.metadata_field.append("signature_def")
    return request


def signature_from_metadata(response, signature_name=SIGNATURE):
    """`{input name: (dtype, shape)}` of one signature in a metadata response."""
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2

    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    if signature_name not in signatures.signature_def:
        raise ValueError(f"Expected the model to have signature {signature_name!r}. "
                         f"It has: {sorted(signatures.signature_def)}")
    return {
        name: (tf.dtypes.as_dtype(info.dtype).as_numpy_dtype,
               tuple(d.size for d in info.tensor_shape.dim))
        for name, info in signatures.signature_def[signature_name].inputs.items()
    }


def arrays_from_response(response):
    """The outputs of a `PredictResponse` as numpy arrays."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


class GrpcClient:
    """Predict and GetModelMetadata over gRPC, e.g. `GrpcClient("localhost:8500")`."""

    def __init__(self, server, timeout=60.0):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            server, options=[("grpc.max_receive_message_length", 256 << 20)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def signature(self, model, signature_name=SIGNATURE, version=None):
        response = self.stub.GetModelMetadata(build_metadata_request(model, version),
                                              timeout=self.timeout)
        return signature_from_metadata(response, signature_name)

    def predict(self, model, inputs, signature_name=SIGNATURE, version=None):
        request = build_predict_request(model, inputs, signature_name, version)
        return arrays_from_response(self.stub.Predict(request, timeout=self.timeout))


# REST


def rest_request_body(inputs, signature_name=SIGNATURE):
    """The JSON body of a REST `:predict` request (columnar "inputs" format)."""
    return json.dumps({
        "signature_name": signature_name,
        "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()},
    })


def rest_predict(url, model, inputs, signature_name=SIGNATURE, timeout=60.0):
    """POST `inputs` to `{url}/v1/models/{model}:predict`; outputs as numpy arrays."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model}:predict",
        data=rest_request_body(inputs, signature_name).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        outputs = json.loads(response.read())["outputs"]
    return {"images": np.asarray(outputs["images"], np.uint8),
            "images_float": np.asarray(outputs["images_float"], np.float32)}


def rest_signature(url, model, signature_name=SIGNATURE, timeout=60.0):
    """`{input name: (dtype, shape)}` from `{url}/v1/models/{model}/metadata`."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/v1/models/{model}/metadata",
                                timeout=timeout) as response:
        signatures = json.loads(response.read())["metadata"]["signature_def"]["signature_def"]
    inputs = signatures[signature_name]["inputs"]
    return {name: (np.float32, tuple(int(d["size"]) for d in info["tensor_shape"]["dim"]))
            for name, info in inputs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="localhost:8500", help="gRPC host:port.")
    parser.add_argument("--rest", default=None, help="Use REST at this URL instead of gRPC.")
    parser.add_argument("--model", default="afgan", help="Model name in TF Serving.")
    parser.add_argument("--seeds", default="0-3", help="Seeds, e.g. '0-3' or '1,5'.")
    parser.add_argument("--trunc", type=float, default=1.0, help="Truncation psi.")
    parser.add_argument("--class_idx", type=int, default=None, help="Class (conditional models).")
    parser.add_argument("--outdir", default="served", help="Where to write seedNNNN.png.")
    args = parser.parse_args()

    seeds = []
    for part in args.seeds.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    if args.rest:
        signature = rest_signature(args.rest, args.model)
    else:
        client = GrpcClient(args.server)
        signature = client.signature(args.model)
    z_dim = signature["z"][1][1]
    c = None
    if "c" in signature:
        c_dim = signature["c"][1][1]
        if args.class_idx is None or not 0 <= args.class_idx < c_dim:
            raise SystemExit(f"This model is conditional: pass --class_idx in [0, {c_dim}).")
        c = np.eye(c_dim, dtype=np.float32)[[args.class_idx] * len(seeds)]
    inputs = generator_inputs(latents(seeds, z_dim), c, args.trunc)
    check_inputs(inputs, signature)
    if args.rest:
        outputs = rest_predict(args.rest, args.model, inputs)
    else:
        outputs = client.predict(args.model, inputs)

    from PIL import Image

    os.makedirs(args.outdir, exist_ok=True)
    for seed, image in zip(seeds, outputs["images"]):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            os.path.join(args.outdir, f"seed{seed:04d}.png"))
    print(f"Wrote {len(seeds)} images to {args.outdir}")


if __name__ == "__main__":
    main()
