#!/usr/bin/env bash
# Issue 7's comparison, alternating contenders ROUNDS times in one run (the machine is shared
# and noisy: compare figures of the same round). For each of ResNet-50 (batch 16), ResNet-18
# (batch 32) and the CIFAR ResNet-20 (batch 128): our train step with XLA's convolutions, with
# conv_impl=gemm, and PyTorch CPU channels_last from a separate venv (torch is not our dependency).
#   TORCH_PY=/work/tvenv/bin/python experiments/benchmarks/speed_vs_torch.sh [ROUNDS] [MODELS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-2}; MODELS=${2:-"resnet50 resnet18 resnet20"}
TORCH_PY=${TORCH_PY:-}
ours() {  # model batch extra-args...
  local m=$1 b=$2; shift 2
  .venv/bin/cnn-jax bench "$m" --batch-size "$b" --num-devices 1 --steps 4 "$@" 2>/dev/null | tail -1 |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"ours {d['model']} batch={d['batch_size']} {d['dtype']} conv_impl={d['conv_impl']} img/s={d['train_img_per_s']:.2f} img/cpu-s={d['train_img_per_cpu_s']:.2f}\")"
}
for i in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    case $m in
      resnet50) b=16; args=(); tb=(../shared/bench/torch_resnet50.py --batch 16 --depth 50);;
      resnet18) b=32; args=(); tb=(../shared/bench/torch_resnet50.py --batch 32 --depth 18);;
      resnet20) b=128; args=(--num-classes 10); tb=(experiments/benchmarks/torch_resnet20.py --batch 128);;
    esac
    ours "$m" "$b" "${args[@]}" --conv-impl xla
    ours "$m" "$b" "${args[@]}" --conv-impl gemm
    if [ -n "$TORCH_PY" ]; then "$TORCH_PY" "${tb[@]}"; fi
  done
done
