#!/usr/bin/env bash
# Runs the example scripts at the settings reported in docs/examples.md and
# writes one JSON file per run to docs/examples/ (the machine is recorded in
# each file). Usage: KERAS_BACKEND=jax bash scripts/run-examples.sh
set -euo pipefail
cd "$(dirname "$0")/../examples"
out=../docs/examples
backend=${KERAS_BACKEND:-tensorflow}
py=${PYTHON:-python}
for mode in svp bp; do
  "$py" mlp.py --dataset fashion_mnist --epochs 10 --mode "$mode" \
    --json "$out/mlp10-fashion_mnist-$mode-$backend.json"
  "$py" vit_svp_plus.py --dataset digits --epochs 30 --dim 64 --depth 4 \
    --num-heads 4 --mode "$mode" --json "$out/vit-digits-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 3 --width-multiplier 0.25 \
    --mode "$mode" --json "$out/vgg3-fashion_mnist-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 8 --width-multiplier 0.25 \
    --mode "$mode" --json "$out/vgg8-fashion_mnist-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 8 --width-multiplier 0.25 \
    --units stage --mode "$mode" \
    --json "$out/vgg8-stage-fashion_mnist-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 8 --width-multiplier 0.25 \
    --units stage --seed 1 --mode "$mode" \
    --json "$out/vgg8-stage-seed1-fashion_mnist-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 12 --width-multiplier 0.25 \
    --units stage --mode "$mode" \
    --json "$out/vgg12-stage-fashion_mnist-$mode-$backend.json"
  "$py" vgg.py --dataset fashion_mnist --epochs 12 --width-multiplier 0.25 \
    --units stage --seed 1 --mode "$mode" \
    --json "$out/vgg12-stage-seed1-fashion_mnist-$mode-$backend.json"
done
"$py" example_utils.py "$out"/*.json
