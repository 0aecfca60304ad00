"""The input pipeline users would otherwise pick: torchvision's ImageFolder and DataLoader with
the ImageNet training transform of torchvision's references (RandomResizedCrop, horizontal
flip, ToTensor, Normalize), on the JPEG folder `cnn-jax bench-data` generates. cnn_jax's
`torchvision` recipe is the same transform. Prints one JSON line: images/s by the wall clock
and per CPU-second of the process and its workers (images/s per core).

    python3 -m venv /path/to/torch-venv && /path/to/torch-venv/bin/pip install torch torchvision pillow
    /path/to/torch-venv/bin/python experiments/benchmarks/torch_dataloader.py --folder DIR --workers 2

torch is not a dependency of cnn_jax, so it lives in a venv of its own. The workers are
started and a first batch is taken before the clock starts, as `bench-data` does; the CPU
time of the main process and its workers is counted between the same two points.
"""

import argparse
import json
import os
import resource
import time


def cpu_seconds(worker_pids) -> float:
    """CPU time of this process and of the DataLoader's running workers (Linux: /proc)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ticks = 0
    for pid in worker_pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return own.ru_utime + own.ru_stime + ticks / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True, help="the folder bench-data generated (it holds train/)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    a = p.parse_args()

    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)  # the workers decode; the main process only collects batches
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(a.size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    folder = datasets.ImageFolder(os.path.join(a.folder, "train"), transform)
    loader = torch.utils.data.DataLoader(
        folder, batch_size=a.batch_size, shuffle=True, num_workers=a.workers, drop_last=True
    )
    batches = iter(loader)
    next(batches)  # worker start-up is not throughput
    pids = [w.pid for w in batches._workers]
    cpu, wall = cpu_seconds(pids), time.perf_counter()
    for _ in range(a.batches):
        next(batches)
    wall, cpu = time.perf_counter() - wall, cpu_seconds(pids) - cpu
    images = a.batches * a.batch_size
    print(
        json.dumps(
            {
                "pipeline": "torchvision DataLoader",
                "workers": a.workers,
                "size": a.size,
                "img_per_s": images / wall,
                "img_per_cpu_s": images / cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
