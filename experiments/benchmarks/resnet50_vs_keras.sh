#!/usr/bin/env bash
# Alternates our ResNet-50 train step with Keras 3's (keras_resnet50.py, JAX backend, the same
# venv) on the same machine, ROUNDS times, printing one line per run: on a shared machine only
# figures of the same round compare.
#   experiments/benchmarks/resnet50_vs_keras.sh [ROUNDS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-2}; BATCH=${2:-16}
for i in $(seq "$ROUNDS"); do
  .venv/bin/cnn-jax bench resnet50 --batch-size "$BATCH" --num-devices 1 --loop | tail -1
  KERAS_BACKEND=jax .venv/bin/python experiments/benchmarks/keras_resnet50.py --batch "$BATCH"
done
