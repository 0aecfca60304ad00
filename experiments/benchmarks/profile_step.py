"""Where a train step's time goes: traces a few steps with the JAX profiler and sums XLA's
per-thunk times by what the op does (forward/backward x convolution/matmul/BatchNorm/...).

    .venv/bin/python experiments/benchmarks/profile_step.py resnet50 --batch-size 16 --conv-impl onednn --bn-impl sums \
        --pool-impl offsets

Each executed thunk (a fusion, a YNNPACK/XNNPACK call, a copy) is matched to its HLO
instruction, whose metadata names the JAX op and model path that produced it; "bwd" is
anything under autodiff's transpose. Prints the table as Markdown and the step time.
"""

from cnn_jax.cpu import host_memory

# As the CLI does (CNN_JAX_MALLOC), before any library starts a thread: glibc fixes its
# arena count when a second thread first allocates.
host_memory.keep_freed_memory()

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnn_jax import models
from cnn_jax.layers import impls
from cnn_jax.train import parallel
from cnn_jax.train.state import create_state
from cnn_jax.train.steps import make_train_step, zero_train_metrics


def compiled_step(name, batch_size, dtype, impl: dict, num_classes, devices=1):
    """The train step compiled with the implementation switches `impl` (cnn_jax/layers/impls.py)."""
    mesh = parallel.make_mesh(devices)
    spec = models.get_spec(name)
    model = models.create_model(name, num_classes=num_classes, dtype=jnp.dtype(dtype))
    shape = (batch_size, spec.input_size, spec.input_size, spec.in_channels)
    state = jax.jit(
        lambda r: create_state(model, optax.sgd(0.01, momentum=0.9), r, (1,) + shape[1:]),
        out_shardings=parallel.replicated(mesh),
    )(jax.random.key(0))
    # Random labels, as `cnn-jax bench` and the PyTorch scripts use: with one label for the
    # whole batch the loss reaches exactly 0 within ~5 steps and later steps train on zeros.
    rng = np.random.default_rng(0)
    batch = parallel.to_global(
        {
            "image": rng.standard_normal(shape, np.float32),
            "label": rng.integers(0, num_classes, batch_size).astype(np.int32),
        },
        mesh,
    )
    metrics = jax.device_put(zero_train_metrics(), parallel.replicated(mesh))
    with impls.use(impl):
        compiled = jax.jit(make_train_step(), donate_argnums=(0, 2)).lower(state, batch, metrics).compile()
    return compiled, state, batch, metrics


def hlo_metadata(hlo_text: str) -> dict:
    """Instruction name -> the JAX op path in its metadata."""
    pattern = r"^\s*(?:ROOT )?%([\w.\-]+) = .*?op_name=\"([^\"]*)\""
    return {m.group(1): m.group(2) for m in re.finditer(pattern, hlo_text, re.M)}


def hlo_instructions(hlo_text: str) -> set:
    """Every instruction name the compiled program defines."""
    return set(re.findall(r"^\s*(?:ROOT )?%([\w.\-]+) = ", hlo_text, re.M))


def category(op_path: str) -> str:
    """A readable class of what an op computes, from its JAX op path."""
    last = op_path.split("/")[-1]
    direction = "bwd" if "transpose(" in op_path else "fwd"
    if "conv_general_dilated" in last:
        what = "convolution (XLA)"
    elif last == "ffi_call":  # conv_impl=onednn's calls (its only FFI target)
        what = "convolution (oneDNN)"
    elif last in ("dot_general", "concatenate", "slice", "pad") and "/conv" in op_path:
        what = {"dot_general": "convolution as matmul"}.get(last, "im2col / slicing for conv")
    elif "/bn/" in op_path or op_path.endswith("/bn"):
        what = "BatchNorm"
    elif "reduce_window" in last or "pool" in op_path:  # before ReLU: a max pool has maxima too
        what = "pooling"
    elif "relu" in op_path or last == "max":
        what = "ReLU"
    elif "transpose" in last:
        what = "transposes"
    else:
        what = "other (loss, optimizer, adds)"
    return f"{direction} {what}"


def profile(compiled, state, batch, metrics, steps: int = 2) -> tuple:
    for _ in range(2):
        state, metrics = compiled(state, batch, metrics)
    jax.block_until_ready(metrics)
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            start = time.perf_counter()
            for _ in range(steps):
                state, metrics = compiled(state, batch, metrics)
            jax.block_until_ready(metrics)
            wall_ms = (time.perf_counter() - start) * 1e3 / steps
        trace = json.load(gzip.open(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[-1]))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    text = compiled.as_text()
    meta, instructions = hlo_metadata(text), hlo_instructions(text)
    totals = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in instructions:
            # Some fusions XLA builds carry no JAX op path (e.g. autodiff's max-pool argmax);
            # they are counted apart rather than left out of the sum.
            what = category(meta[e["name"]]) if e["name"] in meta else "ops without JAX metadata"
            totals[what] += e.get("dur", 0) / 1e3 / steps  # ms per step
    return totals, wall_ms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--num-classes", type=int, default=1000)
    impls.add_flags(p)  # auto: the training defaults for this platform, as `cnn-jax bench`
    p.add_argument("--devices", type=int, default=1, help="CPU devices the batch is split over (summed op times)")
    a = p.parse_args()
    jax.config.update("jax_num_cpu_devices", a.devices)
    impl = impls.from_flags(a, jax.default_backend())
    totals, wall_ms = profile(*compiled_step(a.model, a.batch_size, a.dtype, impl, a.num_classes, a.devices))
    total = sum(totals.values())
    choices = " ".join(f"{k}={v}" for k, v in impl.items())
    print(f"| {a.model} b{a.batch_size} {a.dtype} {choices} devices={a.devices} | ms/step | share |")
    print("|---|---:|---:|")
    for name, ms in totals.most_common():
        print(f"| {name} | {ms:.0f} | {100 * ms / total:.1f}% |")
    print(f"| sum of op times (ops may overlap on the cores) | {total:.0f} | |")
    print(f"| wall time per traced step | {wall_ms:.0f} | |")


if __name__ == "__main__":
    main()
