"""`cnn-jax bench`: steady-state training and inference images/s, compile time and
model FLOPs utilisation (XLA's FLOP count of the step over a matmul peak measured here).

Ends with one JSON line: {"model", "batch_size", "dtype", "device", "train_img_per_s",
"infer_img_per_s", "compile_s", "mfu", ...}. Times are medians of alternating-free
repeated steps; on a shared machine compare figures measured in the same run, and
"train_img_per_s_fastest" (the fastest step's) is the one other tenants disturb least.
"""

import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnn_jax import models
from cnn_jax.config import resolve_dtype
from cnn_jax.layers import impls
from cnn_jax.model_input import check_input
from cnn_jax.train import parallel
from cnn_jax.train.state import create_state, init_program
from cnn_jax.train.steps import make_train_step, zero_train_metrics

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@functools.cache
def matmul_peak_flops(dtype=jnp.float32, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large square matmul on the first device (float32 accumulation for bf16);
    measured once per process, which benchmarks several models against the same peak."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    f(a, a).block_until_ready()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, a).block_until_ready()
        times.append(time.perf_counter() - t)
    return 2.0 * n**3 / min(times)


def _step_times(fn, steps: int, clock=time.perf_counter) -> list:
    times = []
    for _ in range(steps):
        t = clock()
        jax.block_until_ready(fn())
        times.append(clock() - t)
    return times


def _median_time(fn, steps: int, clock=time.perf_counter) -> float:
    return statistics.median(_step_times(fn, steps, clock))


def _flops(stage) -> float:
    """FLOPs by XLA's cost analysis of a lowered (before optimisation) or compiled program."""
    cost = stage.cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost or {}).get("flops", 0.0))


def bench(
    name: str,
    batch_size: int = 16,
    dtype: str = "auto",
    input_size: int = 0,
    steps: int = 5,
    warmup: int = 2,
    num_classes: int = 0,
    num_devices: int = 0,
    loop: bool = False,
    impl: dict | None = None,
) -> dict:
    """`impl`: the implementation switches (cnn_jax/layers/impls.py); absent ones `auto`, the
    training defaults' choice for this platform (cnn_jax.config.resolve_for_platform).
    `num_classes` 0: the registry's class count for the model (LeNet-5's RBF head has 10 codes)."""
    spec = models.get_spec(name)
    num_classes = num_classes or spec.num_classes
    platform = jax.default_backend()
    impl = impls.resolve({**{key: "auto" for key in impls.KEYS}, **(impl or {})}, platform)
    dtype = resolve_dtype(dtype, platform)
    size = input_size or spec.input_size
    mesh = parallel.make_mesh(num_devices, (batch_size,))
    parallel.check_batch_divisible(batch_size, mesh, "batch_size")
    repl = parallel.replicated(mesh)
    model = models.create_model(name, num_classes=num_classes, dtype=DTYPES[dtype])
    tx = optax.sgd(0.01, momentum=0.9)
    shape = (batch_size, size, size, spec.in_channels)
    check_input(name, model, size, spec.in_channels, "pass a larger --input-size")  # before any compilation
    state = init_program(lambda r: create_state(model, tx, r, (1,) + shape[1:]), repl)(jax.random.key(0))
    rng = np.random.default_rng(0)
    batch_np = {
        "image": rng.standard_normal(shape, dtype=np.float32),
        "label": rng.integers(0, num_classes, batch_size).astype(np.int32),
    }
    batch = parallel.to_global(batch_np, mesh)
    metrics = jax.device_put(zero_train_metrics(), repl)
    step = jax.jit(make_train_step(), donate_argnums=(0, 2), out_shardings=(repl, repl))

    t = time.perf_counter()
    with impls.use(impl):  # chosen when the step is traced
        lowered = step.lower(state, batch, metrics)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    flops = _flops(compiled)
    if impl["conv_impl"] == "onednn":  # XLA counts no FLOPs in custom calls: count XLA's own program
        with impls.use({**impl, "conv_impl": "xla"}):
            flops = _flops(jax.jit(make_train_step()).lower(state, batch, metrics))

    holder = {"state": state, "metrics": metrics}

    def train_once():
        holder["state"], holder["metrics"] = compiled(holder["state"], batch, holder["metrics"])
        return holder["metrics"]["loss_sum"]

    for _ in range(warmup):
        train_once()
    train_times = _step_times(train_once, steps)
    train_s = statistics.median(train_times)
    # CPU seconds of this process: on a shared machine other jobs stretch the wall clock
    # but hardly the work done, so this ratio between two runs is the steadier one.
    train_cpu_s = _median_time(train_once, steps, time.process_time)

    variables = {"params": holder["state"].params, "batch_stats": holder["state"].batch_stats}
    infer = jax.jit(lambda v, x: model.apply(v, x, train=False))
    with impls.use(impl):
        infer(variables, batch["image"]).block_until_ready()
    infer_s = _median_time(lambda: infer(variables, batch["image"]), steps)

    peak = matmul_peak_flops(jnp.bfloat16 if dtype == "bfloat16" else jnp.float32)
    result = {
        "model": name,
        "batch_size": batch_size,
        "dtype": dtype,
        **impl,
        "input_size": size,
        "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        "devices": int(mesh.devices.size),
        "train_img_per_s": batch_size / train_s,
        # The fastest step: the one the machine's other work slowed least.
        "train_img_per_s_fastest": batch_size / min(train_times),
        "train_img_per_cpu_s": batch_size / train_cpu_s,
        "infer_img_per_s": batch_size / infer_s,
        "compile_s": compile_s,
        "step_gflop": flops / 1e9,
        "peak_gflop_per_s": peak / 1e9,
        "mfu": flops / train_s / (peak * mesh.devices.size),
    }
    if loop:
        result["loop_img_per_s"] = batch_size / _loop_step_time(compiled, holder, batch_np, mesh, steps)
    return result


def _loop_step_time(compiled, holder, batch_np, mesh, steps: int, log_every: int = 50) -> float:
    """Seconds per step of the training loop's own machinery on in-memory batches: host
    batches transferred through the prefetch queue, metrics fetched every `log_every` steps."""
    n = max(steps * 4, log_every)
    batches = parallel.prefetch_to_mesh((batch_np for _ in range(n)), mesh)
    t = time.perf_counter()
    for i, b in enumerate(batches, 1):
        holder["state"], holder["metrics"] = compiled(holder["state"], b, holder["metrics"])
        if i % log_every == 0 or i == n:
            jax.device_get(holder["metrics"])
    return (time.perf_counter() - t) / n
