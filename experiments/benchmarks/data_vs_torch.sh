#!/usr/bin/env bash
# Input throughput against torchvision's DataLoader: `cnn-jax bench-data --recipe torchvision`
# (RandomResizedCrop 224, flip, normalise through tf.data) and torch_dataloader.py (the same
# transform in torchvision, DataLoader with one worker per core) on the same generated JPEGs,
# alternating ROUNDS times in one run (a shared machine is noisy: compare figures of the same
# round). Prints images/s and images per CPU-second (per core) of each.
#   TORCH_PY=/path/to/torch-venv/bin/python experiments/benchmarks/data_vs_torch.sh [ROUNDS] [BATCHES]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}; BATCHES=${2:-15}
TORCH_PY=${TORCH_PY:?set TORCH_PY to a python with torch and torchvision (see torch_dataloader.py)}
FOLDER=${FOLDER:-${TMPDIR:-/tmp}/cnn_jax_bench_jpegs}
WORKERS=$(nproc)
echo "| round | cnn-jax img/s | per CPU-s | torchvision img/s | per CPU-s | ours / theirs per CPU-s |"
echo "|---:|---:|---:|---:|---:|---:|"
for i in $(seq "$ROUNDS"); do
  ours=$(.venv/bin/cnn-jax bench-data --recipe torchvision --folder "$FOLDER" --images 2000 --batches "$BATCHES" 2>/dev/null | tail -1)
  theirs=$("$TORCH_PY" experiments/benchmarks/torch_dataloader.py --folder "$FOLDER" --workers "$WORKERS" --batches "$BATCHES" | tail -1)
  python3 -c "
import json, sys
o, t = json.loads(sys.argv[2]), json.loads(sys.argv[3])
ow, oc = o['img_per_s']['torchvision'], o['img_per_cpu_s']['torchvision']
print(f\"| {sys.argv[1]} | {ow:.1f} | {oc:.1f} | {t['img_per_s']:.1f} | {t['img_per_cpu_s']:.1f} | {oc / t['img_per_cpu_s']:.2f} |\")
" "$i" "$ours" "$theirs"
done
