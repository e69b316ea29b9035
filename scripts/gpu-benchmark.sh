#!/usr/bin/env bash
# The memory and speed benchmark (BP against SVP) on a GPU machine that has
# JAX and PyTorch but no Keras (this project's lent device; see
# docs/benchmarks/README.md). Two steps:
#
#   scripts/gpu-benchmark.sh prepare
#       here, with internet access to PyPI: downloads the Keras wheels the
#       device lacks into .whl/ (ignored by git; carry it to the device).
#   scripts/gpu-benchmark.sh run OUT_DIR [benchmark options...]
#       on the device, from the repository root: installs .whl/ into a
#       temporary folder, then runs JAX and PyTorch one after the other
#       (TensorFlow is not on the device) and writes the results, labelled
#       with the GPU's name, to OUT_DIR.
#
# The default run is `--only memory,speed` at the full profile's sizes
# (MLP depths 2-32, width 2048, batch 1024); extra options are passed on,
# e.g. `--only architectures`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The device's Python, and the versions scripts/constraints.txt pins.
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
WHEELS=("keras==3.15.1" "namex==0.1.0" "optree==0.20.0")

case "${1:-}" in
prepare)
    python3 -m pip download --no-deps --only-binary=:all: \
        --python-version "$PYTHON_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
run)
    out=${2:?"usage: $0 run OUT_DIR [benchmark options...]"}
    shift 2
    # The driver process imports Keras too (each worker sets its own
    # backend): Keras' default, TensorFlow, is not on the device.
    export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
    if ! python3 -c "import keras" 2>/dev/null; then
        ls .whl/*.whl >/dev/null 2>&1 || {
            echo "No Keras here and no wheels in .whl/: run '$0 prepare' first" \
                "and carry .whl to this machine." >&2
            exit 1
        }
        python3 -m pip install -q --no-index --no-deps --no-compile \
            --no-cache-dir --upgrade --target /tmp/keras-svp-site .whl/*.whl
        export PYTHONPATH="/tmp/keras-svp-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    gpu=$( (nvidia-smi --query-gpu=name --format=csv,noheader || true) 2>/dev/null | head -1)
    export KERAS_SVP_DEVICE="${KERAS_SVP_DEVICE:-${gpu:-no GPU found}}"
    nvidia-smi || true
    if [ $# -eq 0 ]; then
        set -- --only memory,speed
    fi
    python3 -m keras_svp.benchmarks --backend jax,torch "$@" --out "$out"
    ;;
*)
    echo "usage: $0 prepare | run OUT_DIR [benchmark options...]" >&2
    exit 2
    ;;
esac
