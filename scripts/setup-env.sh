#!/usr/bin/env bash
# Creates .venv with keras-svp, all three backends and the test tools.
# torch is pinned to the CPU build (2.13.0): an unpinned torch pulls a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.keras-svp-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c scripts/constraints.txt torch
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[dev]"
    touch "$stamp"
fi
