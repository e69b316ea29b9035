#!/usr/bin/env bash
# The main job: SVP versus backpropagation on digits and Fashion-MNIST, on
# every Keras backend, each in its own process, then one combined table.
# Usage: scripts/main.sh [tensorflow|jax|torch ...] [-- compare.py args]
# Results: results/compare-<backend>.json
set -euo pipefail
cd "$(dirname "$0")/.."

backends=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do backends+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#backends[@]} -eq 0 ] && backends=(tensorflow jax torch)
for backend in "${backends[@]}"; do
    case "$backend" in
        tensorflow | jax | torch) ;;
        *) echo "unknown backend '$backend' (tensorflow, jax, torch; put compare.py flags after --)" >&2; exit 2 ;;
    esac
done

# Fashion-MNIST from Debian's package (keras_svp.datasets reads it there).
fashion_dir=/usr/share/datasets/fashion-mnist
if [ -z "${KERAS_SVP_DATA_DIR:-}" ] && [ ! -d "$fashion_dir" ]; then
    echo "=== installing dataset-fashion-mnist"
    if ! apt-get install -y -q dataset-fashion-mnist; then
        apt-get update -q
        apt-get install -y -q dataset-fashion-mnist
    fi
fi

scripts/setup-env.sh

# PyTorch's OpenMP threads spin while they wait; when the CPU cores are
# shared with other work that makes it up to 10x slower. Passive waiting
# costs nothing measurable on an idle machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

mkdir -p results
files=()
for backend in "${backends[@]}"; do
    echo "=== KERAS_BACKEND=$backend"
    start=$(date +%s)
    KERAS_BACKEND=$backend .venv/bin/python examples/compare.py \
        --json "results/compare-$backend.json" "$@"
    echo "=== $backend: $(($(date +%s) - start)) s (process start included)"
    files+=("results/compare-$backend.json")
done

echo
echo "=== all backends"
.venv/bin/python examples/compare.py --summarize "${files[@]}"
