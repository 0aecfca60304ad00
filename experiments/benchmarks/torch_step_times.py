"""Each training step's time, PyTorch (channels_last), float32 or bfloat16 autocast.

    /path/to/torch-venv/bin/python experiments/benchmarks/torch_step_times.py --depth 18 --batch 32 --dtype bfloat16

The network is ../shared/bench/torch_resnet50.py's `resnet(depth)` (depth 20: the CIFAR
ResNet-20 of torch_resnet20.py) and the step is its step
(SGD with momentum, cross-entropy, one in-memory batch); bfloat16 wraps the forward pass and
the loss in `torch.autocast("cpu", torch.bfloat16)`, PyTorch's mixed precision. torch is not a
dependency of cnn_jax: run this from a separate venv.
"""
import argparse
import os
import sys

import torch

from step_timer import report, time_steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--bench-dir", default=os.path.join(os.path.dirname(__file__), "../../../shared/bench"))
    a = p.parse_args()
    sys.path.insert(0, a.bench_dir)
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    if a.depth == 20:  # the CIFAR ResNet-20 of torch_resnet20.py: 32x32 inputs, 10 classes
        from torch_resnet20 import resnet20
        model, size, classes = resnet20(), 32, 10
    else:
        from torch_resnet50 import resnet
        model, size, classes = resnet(a.depth), 224, 1000
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # as ours and torch_resnet50.py
    x = torch.randn(a.batch, 3, size, size).to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bfloat16"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    print(report(f"torch resnet{a.depth} b{a.batch} {a.dtype}", time_steps(step, a.steps, a.warmup)))


if __name__ == "__main__":
    main()
