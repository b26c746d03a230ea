#!/usr/bin/env bash
# Set up .venv and run the test suite on TensorFlow, JAX and PyTorch in turn.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
. .venv/bin/activate
status=0
for backend in tensorflow jax torch; do
    echo "=== KERAS_BACKEND=$backend ==="
    # Two workers (the CI machine's 2 cores); whole files per worker so module
    # fixtures are built once.
    KERAS_BACKEND=$backend python -m pytest -q -n 2 --dist loadfile "$@"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "No tests ran on $backend: failing." >&2
        status=1
    elif [ "$rc" -ne 0 ]; then
        echo "Tests failed on $backend (exit $rc)." >&2
        status=1
    fi
done
exit $status
