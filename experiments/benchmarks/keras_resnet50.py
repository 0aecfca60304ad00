"""Keras 3's side of the ResNet-50 training-speed comparison (resnet50_vs_keras.sh): images/s
of `keras.applications.ResNet50` trained on one in-memory batch, on the JAX backend.

    KERAS_BACKEND=jax .venv/bin/python experiments/benchmarks/keras_resnet50.py --batch 16

Keras is a test dependency of cnn_jax, so the project's venv runs this. The network is built
offline (`weights=None`): the paper's ResNet v1 (a bottleneck strides in its first 1x1, as our
`resnet50`; Keras's convolutions also carry biases), compiled with SGD (momentum 0.9, lr 0.01)
and sparse categorical cross-entropy, and trained by `train_on_batch` on random images and
random labels. `train_on_batch` returns the loss as a Python number, so each timed call has
finished its step. Prints one line: the median step's images/s (`img/s`), the fastest step's
(`fastest_img/s`) and the first call's excess over a step (`compile_s`, mostly tracing and
XLA compilation).
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from step_timer import time_steps  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224, help="input side in pixels")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (compiling) one")
    a = p.parse_args()
    model = keras.applications.ResNet50(weights=None, input_shape=(a.size, a.size, 3), classes=1000)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9), loss="sparse_categorical_crossentropy"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, a.size, a.size, 3), dtype=np.float32)
    y = rng.integers(0, 1000, size=a.batch).astype(np.int32)

    def step():
        model.train_on_batch(x, y)

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = time_steps(step, a.steps, a.warmup)
    median = statistics.median(times)
    print(
        f"keras resnet50 backend={keras.backend.backend()} batch={a.batch} size={a.size} "
        f"img/s={a.batch / median:.2f} fastest_img/s={a.batch / min(times):.2f} "
        f"compile_s={max(first - median, 0.0):.1f}"
    )


if __name__ == "__main__":
    main()
