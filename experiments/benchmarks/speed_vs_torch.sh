#!/usr/bin/env bash
# Our CPU training step against PyTorch's, alternating contenders ROUNDS times in one run (the
# machine may be shared and noisy: compare figures of the same round). For each of ResNet-50
# (batch 16), ResNet-18 (batch 32) and the CIFAR ResNet-20 (batch 128): the plain jitted Flax
# step (one device, XLA's convolutions, flax's BatchNorm, JAX's max-pool gradient), ours
# without oneDNN (1x1 convolutions as matmuls, BatchNorm from sums, one XLA device per core),
# ours with JAX's max-pool gradient instead of the saved window offsets, ours with every CPU
# default (every convolution through oneDNN, BatchNorm from sums, max-pool gradient by window
# offsets, one device), the same with glibc's default allocator (CNN_JAX_MALLOC=system, as the
# first two also run: it returns each step's temporaries to the kernel, and they fault in
# again), and PyTorch CPU channels_last (torch_resnet.py) when TORCH_PY names a python with
# torch installed (torch is not our dependency; torch_resnet.py says how to make its venv).
#   TORCH_PY=/path/to/torch-venv/bin/python experiments/benchmarks/speed_vs_torch.sh [ROUNDS] [MODELS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-2}; MODELS=${2:-"resnet50 resnet18 resnet20"}
TORCH_PY=${TORCH_PY:-}
ours() {  # label cpu-devices model batch extra-args...
  local label=$1 n=$2 m=$3 b=$4; shift 4
  CNN_JAX_CPU_DEVICES=$n .venv/bin/cnn-jax bench "$m" --batch-size "$b" --steps 6 "$@" 2>/dev/null | tail -1 |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"$label {d['model']} batch={d['batch_size']} {d['dtype']} conv_impl={d['conv_impl']} bn_impl={d['bn_impl']} pool_impl={d['pool_impl']} devices={d['devices']} img/s={d['train_img_per_s']:.2f} img/cpu-s={d['train_img_per_cpu_s']:.2f}\")"
}
for i in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    case $m in
      resnet50) b=16; args=(); tb=(--depth 50 --batch 16);;
      resnet18) b=32; args=(); tb=(--depth 18 --batch 32);;
      resnet20) b=128; args=(--num-classes 10); tb=(--depth 20 --batch 128);;
    esac
    CNN_JAX_MALLOC=system ours plain 1 "$m" "$b" "${args[@]}" --conv-impl xla --bn-impl flax --pool-impl xla
    CNN_JAX_MALLOC=system ours no-onednn "$(nproc)" "$m" "$b" "${args[@]}" --conv-impl gemm --pool-impl xla
    ours jax-pool-grad auto "$m" "$b" "${args[@]}" --pool-impl xla
    CNN_JAX_MALLOC=system ours system-malloc auto "$m" "$b" "${args[@]}"
    ours defaults auto "$m" "$b" "${args[@]}"
    if [ -n "$TORCH_PY" ]; then "$TORCH_PY" experiments/benchmarks/torch_resnet.py "${tb[@]}"; fi
  done
done
