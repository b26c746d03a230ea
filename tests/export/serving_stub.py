"""A stand-in for TF Serving's Predict and GetModelMetadata, gRPC and REST.

`tensorflow_model_server` cannot be installed here, so the serving client
(examples/serving_client.py) is checked against this: the same protocols
(tensorflow-serving-api protos over gRPC; TF Serving's JSON over HTTP)
answered from a SavedModel's signatures with TensorFlow alone. Requests
with an unknown model, signature or input fail as TF Serving fails them.
"""

import json
import os
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import numpy as np


class SavedModelServer:
    """Serves one SavedModel under `model_name` on free localhost ports."""

    def __init__(self, model_name, export_dir):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.model_name = model_name
        self.loaded = tf.saved_model.load(export_dir)
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        self.signature_defs = {k: v for k, v in proto.meta_graphs[0].signature_def.items()
                               if not k.startswith("__")}
        self.requests = []

    def run(self, model_name, signature_name, inputs):
        """Run a signature as TF Serving would; raise KeyError / ValueError on bad requests."""
        import tensorflow as tf

        self.requests.append((model_name, signature_name, inputs))
        if model_name != self.model_name:
            raise KeyError(f"Servable not found for request: Latest({model_name})")
        signature_name = signature_name or "serving_default"
        if signature_name not in self.signature_defs:
            raise KeyError(f"Serving signature key \"{signature_name}\" not found.")
        expected = set(self.signature_defs[signature_name].inputs)
        if set(inputs) != expected:
            raise ValueError(f"input keys {sorted(inputs)} do not match signature {sorted(expected)}")
        fn = self.loaded.signatures[signature_name]
        outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    def signature_def_map(self):
        from tensorflow_serving.apis import get_model_metadata_pb2

        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in self.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature)
        return signatures

    # gRPC

    def start_grpc(self):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import get_model_metadata_pb2
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        server = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                try:
                    outputs = server.run(request.model_spec.name,
                                         request.model_spec.signature_name, inputs)
                except KeyError as error:
                    context.abort(grpc.StatusCode.NOT_FOUND, str(error))
                except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                response = predict_pb2.PredictResponse()
                response.model_spec.CopyFrom(request.model_spec)
                for name, value in outputs.items():
                    response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
                return response

            def GetModelMetadata(self, request, context):
                if request.model_spec.name != server.model_name:
                    context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found")
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.CopyFrom(request.model_spec)
                response.metadata["signature_def"].Pack(server.signature_def_map())
                return response

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[
            ("grpc.max_send_message_length", 256 << 20)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self._grpc)
        port = self._grpc.add_insecure_port("localhost:0")
        self._grpc.start()
        return f"localhost:{port}"

    # REST

    def start_rest(self):
        from google.protobuf import json_format

        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != f"/v1/models/{server.model_name}/metadata":
                    return self._reply(404, {"error": f"Servable not found: {self.path}"})
                signatures = json_format.MessageToDict(server.signature_def_map(),
                                                       preserving_proto_field_name=True)
                self._reply(200, {"model_spec": {"name": server.model_name},
                                  "metadata": {"signature_def": signatures}})

            def do_POST(self):
                prefix, _, model = self.path.rpartition("/v1/models/")
                model_name, _, verb = model.partition(":")
                if prefix or verb != "predict":
                    return self._reply(404, {"error": f"Malformed request: {self.path}"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                signature_name = body.get("signature_name", "serving_default")
                signature = server.signature_defs.get(signature_name)
                inputs = {k: np.asarray(v, np.float32) for k, v in body.get("inputs", {}).items()}
                try:
                    if signature is None:
                        raise KeyError(f"Serving signature key \"{signature_name}\" not found.")
                    outputs = server.run(model_name, signature_name, inputs)
                except KeyError as error:
                    return self._reply(404, {"error": str(error)})
                except Exception as error:  # TF Serving answers 400 with the message
                    return self._reply(400, {"error": str(error)})
                self._reply(200, {"outputs": {k: v.tolist() for k, v in outputs.items()}})

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("localhost", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return f"http://localhost:{self._http.server_address[1]}"

    def stop(self):
        if getattr(self, "_grpc", None) is not None:
            self._grpc.stop(grace=None)
        if getattr(self, "_http", None) is not None:
            self._http.shutdown()
