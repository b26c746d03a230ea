#!/usr/bin/env bash
# Set up .venv, then train the CPU-sized preset on the built-in faces dataset
# (about 15 minutes on 2 cores). KERAS_BACKEND picks the backend (default
# tensorflow, the fastest here); extra arguments go to afgan-train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}"
afgan-train --outdir=runs/tiny --preset=tiny --data=builtin "$@"
afgan-generate --network=runs/tiny/generator.keras --seeds=0-7 --outdir=runs/tiny/samples
