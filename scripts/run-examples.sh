#!/usr/bin/env bash
# Runs the example scripts at the settings reported in docs/examples.md and
# writes one JSON file per run to docs/examples/ (the machine is recorded in
# each file). Usage: KERAS_BACKEND=jax bash scripts/run-examples.sh
# EXAMPLE_ARGS is added to every run: EXAMPLE_ARGS=--random-head builds the
# models as the runs on docs/examples.md were built (head started at random).
set -euo pipefail
cd "$(dirname "$0")/../examples"
out=../docs/examples
backend=${KERAS_BACKEND:-tensorflow}
py=${PYTHON:-python}
read -r -a extra <<< "${EXAMPLE_ARGS:-}"
for mode in svp bp; do
  "$py" mlp.py --dataset fashion_mnist --epochs 10 --mode "$mode" --probes \
    --json "$out/mlp10-fashion_mnist-$mode-$backend.json" "${extra[@]}"
  "$py" vit_svp_plus.py --dataset digits --epochs 30 --dim 64 --depth 4 \
    --num-heads 4 --mode "$mode" --json "$out/vit-digits-$mode-$backend.json" \
    "${extra[@]}"
  for epochs in 3 8; do  # one SVP unit per convolution
    "$py" vgg.py --dataset fashion_mnist --epochs "$epochs" \
      --width-multiplier 0.25 --mode "$mode" \
      --json "$out/vgg$epochs-fashion_mnist-$mode-$backend.json" "${extra[@]}"
  done
  # The accuracy benchmark's small CNN (3 units), at its width and twice
  # it, two seeds, with linear probes.
  for width in 1 2; do
    for seed in 0 1; do
      tag=""
      if [ "$width" != 1 ]; then tag="-w$width"; fi
      if [ "$seed" != 0 ]; then tag="$tag-seed$seed"; fi
      "$py" vgg.py --dataset fashion_mnist --epochs 5 --config small \
        --width-multiplier "$width" --seed "$seed" --probes --mode "$mode" \
        --json "$out/cnn5$tag-fashion_mnist-$mode-$backend.json" "${extra[@]}"
    done
  done
  for epochs in 8 12; do  # one SVP unit per stage, two seeds
    for seed in 0 1; do
      tag=""
      if [ "$seed" != 0 ]; then tag="-seed$seed"; fi
      "$py" vgg.py --dataset fashion_mnist --epochs "$epochs" \
        --width-multiplier 0.25 --units stage --seed "$seed" --mode "$mode" \
        --json "$out/vgg$epochs-stage$tag-fashion_mnist-$mode-$backend.json" \
        "${extra[@]}"
    done
  done
done
"$py" example_utils.py "$out"/*.json
