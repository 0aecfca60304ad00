"""One convolution layer alone, forward + both gradients, per conv_impl: where XLA's CPU
convolutions lose and what oneDNN's (conv_impl=onednn) win back.

    .venv/bin/python experiments/benchmarks/conv_kernels.py [--impls xla,onednn] [--repeats 5]

Shapes: ResNet-18/34's 3x3 stages at batch 32 (one strided), the CIFAR ResNet-20's at
batch 128, the 7x7/2 ImageNet stem, and a MobileNet depthwise 3x3. Prints ms per
value-and-grad call (best of `repeats`), GFLOP/s (3x the forward's FLOPs), and each
implementation's speed against the first one's.
"""

from cnn_jax.cpu import host_memory

# As the CLI does (CNN_JAX_MALLOC), before any library starts a thread: glibc fixes its
# arena count when a second thread first allocates.
host_memory.keep_freed_memory()

import argparse
import time

import jax
import jax.numpy as jnp
from jax import lax

from cnn_jax.layers import conv

# (batch, size, in channels, out channels, kernel, stride, groups)
SHAPES = [
    (32, 56, 64, 64, 3, 1, 1),
    (32, 28, 128, 128, 3, 1, 1),
    (32, 14, 256, 256, 3, 1, 1),
    (32, 7, 512, 512, 3, 1, 1),
    (32, 56, 64, 128, 3, 2, 1),
    (128, 32, 16, 16, 3, 1, 1),
    (128, 16, 32, 32, 3, 1, 1),
    (128, 8, 64, 64, 3, 1, 1),
    (32, 224, 3, 64, 7, 2, 1),
    (32, 56, 128, 128, 3, 1, 128),
]


def best_seconds(fn, args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--impls", default="xla,onednn")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    impls = a.impls.split(",")
    print(
        "| batch x size x in -> out, kernel/stride/groups | "
        + " | ".join(f"{i} ms (GFLOP/s)" for i in impls)
        + " | "
        + " | ".join(f"{i} / {impls[0]}" for i in impls[1:])
        + " |"
    )
    print("|---" * (1 + 2 * len(impls) - 1) + "|")
    for n, size, c, o, k, s, g in SHAPES:
        x = jax.random.normal(jax.random.key(0), (n, size, size, c))
        w = jax.random.normal(jax.random.key(1), (k, k, c // g, o)) * 0.1
        flops = 3 * 2 * n * (size // s) ** 2 * (c // g) * o * k * k
        times = []
        for impl in impls:
            with conv.conv_backend(impl):
                fn = jax.jit(
                    jax.value_and_grad(
                        lambda x, w, s=s, g=g: jnp.sum(
                            conv.conv_general_dilated(
                                x,
                                w,
                                (s, s),
                                "SAME",
                                dimension_numbers=lax.conv_dimension_numbers(
                                    x.shape, w.shape, ("NHWC", "HWIO", "NHWC")
                                ),
                                feature_group_count=g,
                            )
                            ** 2
                        ),
                        (0, 1),
                    )
                )
                jax.block_until_ready(fn(x, w))  # traced inside the block
            times.append(best_seconds(fn, (x, w), a.repeats))
        cells = [f"{t * 1e3:.1f} ({flops / t / 1e9:.0f})" for t in times]
        ratios = [f"{times[0] / t:.2f}x" for t in times[1:]]
        print(f"| {n}x{size}x{size}x{c} -> {o}, {k}x{k}/{s}/{g} | " + " | ".join(cells + ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
