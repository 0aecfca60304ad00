"""Each training step's time, PyTorch (channels_last), float32 or bfloat16 autocast.

    /path/to/torch-venv/bin/python experiments/benchmarks/torch_step_times.py --depth 18 --batch 32 --dtype bfloat16

The network and the step are torch_resnet.py's (SGD with momentum, cross-entropy against
random labels, one in-memory batch; depth 20 is the CIFAR ResNet-20 at 32x32); bfloat16 wraps
the forward pass and the loss in `torch.autocast("cpu", torch.bfloat16)`, PyTorch's mixed
precision. Prints the steps' times sorted, their median and the fastest, as step_times.py does
for ours. torch is not a dependency of cnn_jax: run this from a separate venv (torch_resnet.py
says how to make one).
"""

import argparse
import os

import torch
from step_timer import report, time_steps
from torch_resnet import training_step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count())
    step, _ = training_step(a.depth, a.batch, a.dtype)
    print(report(f"torch resnet{a.depth} b{a.batch} {a.dtype}", time_steps(step, a.steps, a.warmup)))


if __name__ == "__main__":
    main()
