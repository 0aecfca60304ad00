"""Two (or more) choices of one implementation switch (or of the compute dtype), compared in
one process: each train step is compiled once per choice and the programs take turns, step by
step, so that a shared machine's slow and fast phases fall on all of them alike (separate
`cnn-jax bench` runs of one program can differ by more than most switches change).

    .venv/bin/python experiments/benchmarks/ab_step.py resnet18 --batch-size 32 --switch pool_impl=xla,offsets
    .venv/bin/python experiments/benchmarks/ab_step.py alexnet --batch-size 8 --switch dtype=float32,bfloat16

The other switches keep this machine's CPU defaults (`auto`: conv_impl onednn where it builds,
bn_impl sums, pool_impl offsets, dense_impl explicit); --dtype bfloat16 compares bfloat16 steps.
Prints the median step time and images/s per choice, and their ratio to the first.
"""

from cnn_jax.cpu import host_memory

# As the CLI does (CNN_JAX_MALLOC), before any library starts a thread.
host_memory.keep_freed_memory()

import argparse
import statistics
import time

import jax
from profile_step import compiled_step

from cnn_jax.layers import impls


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--switch",
        required=True,
        help=f"key=choice,choice,... (one of {', '.join(impls.KEYS)}, or dtype=float32,bfloat16)",
    )
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=8, help="timed steps per choice, after one untimed")
    p.add_argument("--num-classes", type=int, default=1000)
    a = p.parse_args()
    key, choices = a.switch.split("=")
    if key not in impls.KEYS + ("dtype",):
        p.error(f"--switch takes one of {', '.join(impls.KEYS)} or dtype")
    defaults = impls.resolve({k: "auto" for k in impls.KEYS}, "cpu")
    programs = {}
    for choice in choices.split(","):
        dtype, impl = (choice, defaults) if key == "dtype" else (a.dtype, {**defaults, key: choice})
        programs[choice] = list(compiled_step(a.model, a.batch_size, dtype, impl, a.num_classes))
    times = {choice: [] for choice in programs}
    for step in range(a.steps + 1):
        for choice, program in programs.items():
            compiled, state, batch, metrics = program
            start = time.perf_counter()
            state, metrics = compiled(state, batch, metrics)
            jax.block_until_ready(metrics)
            program[1], program[3] = state, metrics
            if step:
                times[choice].append(time.perf_counter() - start)
    first = statistics.median(next(iter(times.values())))
    print(
        f"| {a.model} b{a.batch_size}{'' if key == 'dtype' else ' ' + a.dtype}, {key} "
        f"| median ms/step | images/s | speed vs {next(iter(times))} |"
    )
    print("|---|---:|---:|---:|")
    for choice, ts in times.items():
        median = statistics.median(ts)
        print(f"| {choice} | {median * 1e3:.0f} | {a.batch_size / median:.2f} | {first / median:.2f}x |")


if __name__ == "__main__":
    main()
