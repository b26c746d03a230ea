#!/usr/bin/env bash
# Set up .venv, then run the main job on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
KERAS_BACKEND="${KERAS_BACKEND:-jax}" python examples/quickstart.py --outdir runs/quickstart
