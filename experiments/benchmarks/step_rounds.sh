#!/usr/bin/env bash
# Our training step against PyTorch's, step by step: ROUNDS alternations of our step
# (step_times.py) and PyTorch's (torch_step_times.py, channels_last, from a separate venv that
# torch_resnet.py says how to make) for ResNet-50 b16, ResNet-18 b32 and the CIFAR ResNet-20
# b128, float32, STEPS timed steps after the scripts' 2 untimed ones. Prints each program's
# sorted step times, then PyTorch/ours for the medians and for the fastest steps. On a shared
# machine other tenants stretch some steps of either program (a stretched step's user CPU time
# grows with its wall time), so the fastest step is the steadier figure, and the median shows
# how often a program was slowed.
#   TORCH_PY=/path/to/torch-venv/bin/python experiments/benchmarks/step_rounds.sh [ROUNDS] [MODELS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-3}; MODELS=${2:-"resnet50 resnet18 resnet20"}; STEPS=${3:-18}
TORCH_PY=${TORCH_PY:?set TORCH_PY to a python with torch installed}
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p"; }
for i in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    case $m in
      resnet50) b=16 depth=50 classes=1000;;
      resnet18) b=32 depth=18 classes=1000;;
      resnet20) b=128 depth=20 classes=10;;
    esac
    ours=$(../../.venv/bin/python step_times.py "$m" --batch-size $b --num-classes $classes --steps "$STEPS" 2>/dev/null | tail -1)
    torch=$("$TORCH_PY" torch_step_times.py --depth $depth --batch $b --steps "$STEPS" 2>/dev/null | tail -1)
    echo "$ours"; echo "$torch"
    python3 -c "import sys; om, of, tm, tf = map(float, sys.argv[1:]); print(f'round $i $m b$b: PyTorch/ours median {tm / om:.2f}, fastest {tf / of:.2f}')" \
      "$(echo "$ours" | field median)" "$(echo "$ours" | field fastest)" "$(echo "$torch" | field median)" "$(echo "$torch" | field fastest)"
  done
done
