"""Each training step's time, ours, for one model, batch and dtype (the training defaults'
implementations unless --conv-impl/--bn-impl/--pool-impl say otherwise).

    python experiments/benchmarks/step_times.py resnet18 --batch-size 32 --dtype bfloat16

Prints the steps' times sorted and their median: the spread shows how noisy the machine was.
Alternate it with experiments/benchmarks/torch_step_times.py (PyTorch, float32 or autocast
bfloat16) in one run.
"""

from cnn_jax.cpu import host_memory

host_memory.keep_freed_memory()  # before JAX starts its threads, as the CLI does

import argparse

import jax
from profile_step import compiled_step
from step_timer import report, time_steps

from cnn_jax.layers import impls


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--num-classes", type=int, default=1000)
    impls.add_flags(p)
    a = p.parse_args()
    impl = impls.from_flags(a, jax.default_backend())
    compiled, state, batch, metrics = compiled_step(a.model, a.batch_size, a.dtype, impl, a.num_classes)
    holder = [state, metrics]

    def step():
        holder[0], holder[1] = compiled(holder[0], batch, holder[1])
        jax.block_until_ready(holder[1])

    print(report(f"ours {a.model} b{a.batch_size} {a.dtype}", time_steps(step, a.steps, a.warmup)))


if __name__ == "__main__":
    main()
