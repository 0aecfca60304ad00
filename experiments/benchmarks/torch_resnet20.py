"""Peer figure: PyTorch CPU training throughput of He et al.'s CIFAR ResNet-20 (3 stages of
3 basic blocks, 16/32/64 channels, option-A identity shortcuts as zero-padded strided
subsampling), written out here so no torchvision is needed. Mirrors
../shared/bench/torch_resnet50.py: one SGD (momentum 0.9) step with cross-entropy on one
in-memory batch, channels_last unless --nchw, medians of --steps steps.

    /path/to/torch-venv/bin/python experiments/benchmarks/torch_resnet20.py --batch 128

torch is not a dependency of cnn_jax: run this from a separate venv (`pip install torch==2.13.0`).
Prints one line: `torch_resnet20 batch=B layout=L img/s=X`.
"""
import argparse
import os
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        short = x[:, :, ::self.stride, ::self.stride]
        if self.pad:  # option A: parameter-free shortcut, extra channels are zeros
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(y + short)


def resnet20(classes=10, n=3):
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)]
    cin = 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(n):
            layers.append(Basic(cin, width, stride if i == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--nchw", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    fmt = torch.contiguous_format if a.nchw else torch.channels_last
    model = resnet20().to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(a.batch, 3, 32, 32).to(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    layout = "nchw" if a.nchw else "channels_last"
    print(f"torch_resnet20 batch={a.batch} layout={layout} img/s={a.batch / statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
