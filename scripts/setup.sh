#!/usr/bin/env bash
# Create .venv with keras_afgan and the CPU builds of all three backends.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch pinned to the CPU build: a bare `torch` pulls a multi-GB CUDA build.
python -m pip install --quiet "torch==2.13.0" "tensorflow-cpu==2.21.0" "jax[cpu]==0.10.2" \
    "keras==3.15.1" "tf2onnx==1.17.0" "onnx==1.23.2" "onnxruntime==1.32.0" -e ".[test]"
# The serving client's protos. --no-deps: the package requires `tensorflow`,
# which would pull the full build beside tensorflow-cpu; grpcio and protobuf
# are already there.
python -m pip install --quiet --no-deps "tensorflow-serving-api==2.21.0"
