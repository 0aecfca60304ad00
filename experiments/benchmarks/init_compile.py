"""What compiling the initial state costs at XLA's CPU optimisation levels (the default, and
the levels cnn_jax/train/state.init_program chooses between): seconds to compile, seconds to
run, and how many weights differ from the default's. The levels alternate over the rounds.

    python experiments/benchmarks/init_compile.py [--rounds 2] [MODEL ...]
"""

import argparse
import time

import jax
import numpy as np
import optax

from cnn_jax.models.registry import create_model, get_spec
from cnn_jax.train.state import LIGHTLY_OPTIMISED_ON_CPU, create_state

LEVELS = {"default": None, "1": LIGHTLY_OPTIMISED_ON_CPU, "0": {"xla_backend_optimization_level": 0}}


def measure(name: str, options) -> tuple:
    """(compile s, run s, the initial weights) of `name`'s initial state, compiled with `options`."""
    spec = get_spec(name)
    model = create_model(name)
    shape = (1, spec.input_size, spec.input_size, spec.in_channels)
    program = jax.jit(lambda r: create_state(model, optax.sgd(0.1, momentum=0.9), r, shape).params)
    start = time.perf_counter()
    compiled = program.lower(jax.random.key(0)).compile(options)
    compiled_at = time.perf_counter()
    params = jax.block_until_ready(compiled(jax.random.key(0)))
    return compiled_at - start, time.perf_counter() - compiled_at, jax.tree.leaves(jax.device_get(params))


def _medians(times: dict, i: int) -> str:
    return " / ".join(f"{np.median([t[i] for t in times[k]]):.2f}" for k in LEVELS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["lenet5", "mobilenet_v1", "resnet50", "vgg16"])
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    print("| model | compile s, default / level 1 / level 0 | run s, same order | weights differing, 1 / 0 |")
    print("|---|---|---|---|")
    for name in a.models:
        times, weights = {k: [] for k in LEVELS}, {}
        for r in range(a.rounds):
            for label in list(LEVELS)[:: 1 if r % 2 == 0 else -1]:
                compile_s, run_s, weights[label] = measure(name, LEVELS[label])
                times[label].append((compile_s, run_s))
        differ = {k: sum(int(np.sum(x != y)) for x, y in zip(weights["default"], weights[k])) for k in ("1", "0")}
        total = sum(x.size for x in weights["default"])
        compile_s, run_s = (_medians(times, i) for i in (0, 1))
        print(f"| {name} | {compile_s} | {run_s} | {differ['1']:,} / {differ['0']:,} of {total:,} |", flush=True)


if __name__ == "__main__":
    main()
