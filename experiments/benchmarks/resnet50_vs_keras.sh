#!/usr/bin/env bash
# Alternates our ResNet-50 train step with Keras 3's (JAX backend) on the same machine,
# ROUNDS times, printing one line per run. Usage: experiments/benchmarks/resnet50_vs_keras.sh [ROUNDS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-2}; BATCH=${2:-16}
PEER=${PEER:-../shared/bench/keras_resnet50.py}
for i in $(seq "$ROUNDS"); do
  .venv/bin/cnn-jax bench resnet50 --batch-size "$BATCH" --num-devices 1 --loop | tail -1
  KERAS_BACKEND=jax .venv/bin/python "$PEER" --batch "$BATCH"
done
