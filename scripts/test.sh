#!/usr/bin/env bash
# Runs the whole test suite on each Keras backend (default: all three).
# Usage: scripts/test.sh [tensorflow|jax|torch ...] [-- pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
backends=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do backends+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#backends[@]} -eq 0 ] && backends=(tensorflow jax torch)
.venv/bin/ruff check keras_svp tests examples
.venv/bin/ruff format --check keras_svp tests examples
# PyTorch's OpenMP threads spin while they wait; on shared cores that makes
# torch steps up to 10x slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# One pytest worker per core (pytest-xdist): most tests are small models
# whose tracing and compiling run on one core. `-- -n 0` runs them in one
# process.
for backend in "${backends[@]}"; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend .venv/bin/python -m pytest -q -n auto "$@"
done
