"""What an epoch's end costs a training run: the wait for each epoch's first batch, with the
input pipeline as it is and with tf.data's autotuner turned back on (the options the pipeline
had before). A jitted stand-in step keeps the CPU busy between batches the way training does;
the two arms alternate, one epoch sequence each per round.

    python experiments/benchmarks/epoch_boundary.py [--rounds 2] [--epochs 6] [--step-ms 40] \
        [--config configs/random_erasing.py:depth=20]

The default config reads Fashion-MNIST (`apt-get install dataset-fashion-mnist`).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import cnn_jax.data.pipeline as pipeline_module
from cnn_jax.config import config_from_flags
from cnn_jax.data.datasets import open_source
from cnn_jax.data.order import steps_per_epoch
from cnn_jax.train import parallel

AS_IS = pipeline_module._options


def autotuned():
    """The pipeline's options before: tf.data's autotuner on, with a 2 GiB RAM budget."""
    opts = AS_IS()
    opts.autotune.enabled = True
    opts.autotune.ram_budget = 2 * 2**30
    return opts


ARMS = {"as is": AS_IS, "autotuned": autotuned}


def stand_in_step(milliseconds: float):
    """A jitted step that takes about `milliseconds` on this CPU and reads the batch."""
    w = jnp.ones((512, 512), jnp.float32)
    one = jax.jit(lambda w, x: (w @ w).sum() * 0 + x["image"].astype(jnp.float32).mean())
    one(w, {"image": jnp.zeros((1,))}).block_until_ready()
    start = time.perf_counter()
    for _ in range(20):
        one(w, {"image": jnp.zeros((1,))}).block_until_ready()
    repeats = max(1, round(milliseconds / 1e3 / ((time.perf_counter() - start) / 20)))

    def step(batch):
        for _ in range(repeats):
            out = one(w, batch)
        return out.block_until_ready()

    return step


def epoch_starts(config, arm: str, epochs: int, step) -> tuple:
    """(s waited for the batches around the start of epochs 2..epochs, wall s) of `epochs` epochs under `arm`."""
    pipeline_module._options = ARMS[arm]
    source = open_source(config.dataset, config.data_dir, config.train_split, config.eval_split, config.data.idx_dir)
    pipe = pipeline_module.Pipeline(source, config)
    spe = steps_per_epoch(pipe.num_train, int(config.batch_size))
    mesh = parallel.make_mesh(0, (int(config.batch_size), int(config.batch_size)))
    waits, start = np.zeros(epochs + 1), time.perf_counter()
    before = start
    for i, batch in enumerate(parallel.prefetch_to_mesh(pipe.train_batches(0, epochs * spe), mesh)):
        # The prefetch runs a batch ahead: the next epoch's iterator starts while batch spe - 1 is drawn.
        if i and i % spe in (spe - 1, 0):
            waits[(i + 1) // spe] += time.perf_counter() - before
        step(batch)
        before = time.perf_counter()
    pipeline_module._options = AS_IS
    return waits[1:epochs], time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/random_erasing.py:depth=20")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--step-ms", type=float, default=40.0)
    args = p.parse_args()
    config, _ = config_from_flags([f"--config={args.config}"])
    step = stand_in_step(args.step_ms)
    for r in range(args.rounds):
        for arm in ARMS if r % 2 == 0 else reversed(list(ARMS)):
            waits, wall = epoch_starts(config, arm, args.epochs, step)
            print(
                f"round {r} {arm:>9}: epoch starts waited {' '.join(f'{w:.1f}' for w in waits)} s "
                f"(mean {np.mean(waits):.1f}); {args.epochs} epochs in {wall:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
