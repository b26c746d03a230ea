#!/usr/bin/env bash
# Create .venv with keras_afgan and the CPU builds of all three backends.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch pinned to the CPU build: a bare `torch` pulls a multi-GB CUDA build.
python -m pip install --quiet "torch==2.13.0" "tensorflow-cpu==2.21.0" "jax[cpu]==0.10.2" \
    "keras==3.15.1" -e ".[test]"
