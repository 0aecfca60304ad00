"""PyTorch's side of the CPU training-speed comparison: images/s of one ResNet training step
(SGD with momentum 0.9, lr 0.01, cross-entropy against random labels) on one in-memory batch,
channels_last unless --nchw.

    python3 -m venv /path/to/torch-venv && /path/to/torch-venv/bin/pip install torch==2.13.0 numpy
    /path/to/torch-venv/bin/python experiments/benchmarks/torch_resnet.py --depth 50 --batch 16

torch is not a dependency of cnn_jax, so it lives in a venv of its own, and the networks are
written out below with torch.nn alone (no torchvision):

  --depth 18, 34, 50, 101, 152: the ImageNet ResNets at 224x224, 1000 classes, with
    torchvision's layers and initialisation. A bottleneck strides in its 3x3 convolution as
    torchvision's `resnet50` does (v1.5); --stride-in-1x1 strides in the first 1x1 as the
    paper and our `resnet50` do (v1).
  --depth 20, 32, 44, 56, 110: the CIFAR ResNets of He et al. Sec. 4.2 at 32x32, 10 classes:
    three stages of (depth - 2) / 6 basic blocks, 16/32/64 channels, option-A shortcuts
    (strided subsampling, zero-padded channels: no parameters), as our `resnet20`.

--dtype bfloat16 runs the forward pass and the loss under torch.autocast("cpu", bfloat16),
PyTorch's mixed precision. Prints one line: the median step's images/s (`img/s`) and the
fastest step's (`fastest_img/s`, the one a shared machine's other work slowed least).
Alternate it with our step in one run (speed_vs_torch.sh, step_rounds.sh): on a shared
machine only figures of the same round compare.
"""

import argparse
import os
import statistics
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_timer import time_steps  # noqa: E402  (beside this file; needs nothing but the stdlib)

IMAGENET = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR = (20, 32, 44, 56, 110)


def conv_bn(cin, cout, k, stride=1, relu=True):
    """A bias-free k x k convolution ('same' padding for odd k), BatchNorm, optionally ReLU."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class Residual(nn.Module):
    """relu(body(x) + shortcut(x)); the shortcut is the identity, a 1x1 projection (option B)
    or, for option A, strided subsampling with zero channels appended."""

    def __init__(self, body, cin, cout, stride, option="B"):
        super().__init__()
        self.body, self.stride, self.extra = body, stride, cout - cin
        self.project = None
        if option == "B" and (stride != 1 or cin != cout):
            self.project = conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x):
        if self.project is not None:
            short = self.project(x)
        elif self.stride != 1 or self.extra:
            short = x[:, :, :: self.stride, :: self.stride]
            half = self.extra // 2
            short = nn.functional.pad(short, (0, 0, 0, 0, half, self.extra - half))
        else:
            short = x
        return torch.relu(self.body(x) + short)


def basic(cin, width, stride, option="B"):
    body = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, relu=False))
    return Residual(body, cin, width, stride, option), width


def bottleneck(cin, width, stride, stride_in_1x1=False):
    s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
    body = nn.Sequential(
        conv_bn(cin, width, 1, s1), conv_bn(width, width, 3, s3), conv_bn(width, 4 * width, 1, relu=False)
    )
    return Residual(body, cin, 4 * width, stride), 4 * width


def resnet(depth, stride_in_1x1=False):
    """(model, input size, classes) for an ImageNet depth or a CIFAR one."""
    if depth in CIFAR:
        n, cin = (depth - 2) // 6, 16
        layers = [conv_bn(3, 16, 3)]
        for i, width in enumerate((16, 32, 64)):
            for j in range(n):
                block, cin = basic(cin, width, 2 if i > 0 and j == 0 else 1, option="A")
                layers.append(block)
        size, classes = 32, 10
    elif depth in IMAGENET:
        kind, stages = IMAGENET[depth]
        layers, cin = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
        for i, n in enumerate(stages):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                if kind == "basic":
                    block, cin = basic(cin, 64 * 2**i, stride)
                else:
                    block, cin = bottleneck(cin, 64 * 2**i, stride, stride_in_1x1)
                layers.append(block)
        size, classes = 224, 1000
    else:
        raise SystemExit(f"--depth {depth}: choose one of {sorted(IMAGENET) + list(CIFAR)}")
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))
    # He initialisation (fan_out) as torchvision's ResNets and ours: it keeps activations at
    # unit scale through the stack, where smaller ones would drift towards denormal floats,
    # which the CPU computes slowly.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model, size, classes


def training_step(depth, batch, dtype="float32", nchw=False, stride_in_1x1=False, seed=0):
    """A function running one SGD step of the chosen ResNet on one fixed random batch; it
    returns once the step has finished (PyTorch's CPU ops are synchronous)."""
    torch.manual_seed(seed)
    fmt = torch.contiguous_format if nchw else torch.channels_last
    model, size, classes = resnet(depth, stride_in_1x1)
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size).to(memory_format=fmt)
    y = torch.randint(0, classes, (batch,))  # random labels: the loss does not collapse to 0

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step, size


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=50, help="18/34/50/101/152 (ImageNet) or 20/32/44/56/110 (CIFAR)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--nchw", action="store_true", help="PyTorch's default layout instead of channels_last")
    p.add_argument("--stride-in-1x1", action="store_true", help="bottleneck stride in the first 1x1 (v1)")
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count())
    step, size = training_step(a.depth, a.batch, a.dtype, a.nchw, a.stride_in_1x1)
    times = time_steps(step, a.steps, a.warmup)
    layout = "nchw" if a.nchw else "channels_last"
    variant = " v1" if a.stride_in_1x1 and IMAGENET.get(a.depth, ("",))[0] == "bottleneck" else ""
    print(
        f"torch resnet{a.depth}{variant} batch={a.batch} size={size} {a.dtype} {layout} "
        f"threads={torch.get_num_threads()} img/s={a.batch / statistics.median(times):.2f} "
        f"fastest_img/s={a.batch / min(times):.2f}"
    )


if __name__ == "__main__":
    main()
