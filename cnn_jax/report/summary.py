"""Per-layer summary: output shape, trainable parameters and multiply-accumulates.

MACs follow the architecture reference file's convention: multiply-adds of
convolutions (grouped and depthwise included) and dense layers, batch 1, no
bias, BatchNorm, activation, pooling or residual adds. A custom layer reports
its own by defining `count_macs(inputs, outputs) -> int` (per example).
Everything runs under `jax.eval_shape`: no compile, no memory.
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class LayerRow:
    path: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclasses.dataclass
class Summary:
    rows: list
    total_params: int
    total_macs: int
    output_shape: tuple


def layer_macs(module: nn.Module, inputs, outputs) -> int | None:
    """MACs per example for the layers the reference counts, None for other modules."""
    if hasattr(module, "count_macs"):
        return int(module.count_macs(inputs, outputs))
    if isinstance(module, nn.Conv):
        out_positions = math.prod(outputs.shape[1:-1])
        taps = math.prod(module.kernel_size) * inputs.shape[-1] // module.feature_group_count
        return out_positions * taps * outputs.shape[-1]
    if isinstance(module, nn.Dense):
        return math.prod(outputs.shape[1:]) * inputs.shape[-1]
    return None


def _direct_param_count(params, path: tuple) -> int:
    node = params
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return 0
        node = node[key]
    if not isinstance(node, dict):
        return 0
    return sum(math.prod(v.shape) for v in node.values() if not isinstance(v, dict))


def summarize(model: nn.Module, input_shape: tuple, dtype=jnp.float32, train: bool = False) -> Summary:
    """Trace `model.init` abstractly and collect one row per layer that owns parameters or MACs."""
    calls = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and args and hasattr(args[0], "shape"):
            first_out = out[0] if isinstance(out, (tuple, list)) else out
            calls.append(
                (
                    context.module.path,
                    type(context.module).__name__,
                    tuple(first_out.shape) if hasattr(first_out, "shape") else (),
                    layer_macs(context.module, args[0], first_out),
                )
            )
        return out

    def init():
        with nn.intercept_methods(record):
            outputs, variables = model.init_with_output(
                {"params": jax.random.key(0), "dropout": jax.random.key(1)}, jnp.zeros(input_shape, dtype), train=train
            )
        return variables, outputs

    variables, outputs = jax.eval_shape(init)
    seen, rows = set(), []
    params = variables.get("params", {})
    for path, kind, shape, macs in calls:
        if path in seen:
            continue
        seen.add(path)
        n = _direct_param_count(params, path)
        if n or macs:
            rows.append(LayerRow("/".join(path), kind, shape, n, macs or 0))
    total = sum(math.prod(v.shape) for v in jax.tree.leaves(params))
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    return Summary(rows, int(total), int(sum(r.macs for r in rows)), tuple(logits.shape))


def count_params(model: nn.Module, input_shape: tuple) -> int:
    """Trainable parameter count via jax.eval_shape (no compile, no memory)."""
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(input_shape), train=False))
    return int(sum(np.prod(v.shape) for v in jax.tree.leaves(variables.get("params", {}))))


def format_summary(summary: Summary, title: str = "") -> str:
    header = f"{'layer':<48} {'kind':<18} {'output':>20} {'params':>13} {'MACs':>16}"
    lines = [title, header, "-" * len(header)] if title else [header, "-" * len(header)]
    for r in summary.rows:
        lines.append(f"{r.path:<48} {r.kind:<18} {str(r.output_shape):>20} {r.params:>13,} {r.macs:>16,}")
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<48} {'':<18} {str(summary.output_shape):>20} {summary.total_params:>13,} {summary.total_macs:>16,}"
    )
    return "\n".join(lines)
