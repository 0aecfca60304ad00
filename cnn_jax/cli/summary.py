"""`cnn-jax summary`: a model's per-layer table (output shape, parameters, MACs), or the
list of model names."""

import argparse

from cnn_jax.cli.common import whole_number
from cnn_jax.config_schema import MAX_IMAGE


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax summary")
    p.add_argument("model", nargs="?")
    p.add_argument("--input-size", type=whole_number(0, MAX_IMAGE), default=0, help="0: the model's paper input")
    p.add_argument("--num-classes", type=whole_number(0), default=0, help="0: the model's own class count")
    p.add_argument("--list", action="store_true", help="list the model names")
    a = p.parse_args(argv)
    from cnn_jax import models
    from cnn_jax.report.summary import format_summary, summarize

    if a.list or not a.model:
        for name in models.list_models():
            print(f"{name:<22} {models.get_spec(name).description}")
        return 0
    spec = models.get_spec(a.model)
    size = a.input_size or spec.input_size
    model = models.create_model(a.model, num_classes=a.num_classes or None)
    from cnn_jax.model_input import input_size_errors

    with input_size_errors(a.model, size, "pass a larger --input-size"):
        s = summarize(model, (1, size, size, spec.in_channels))
    print(format_summary(s, f"{a.model} at {size}x{size}x{spec.in_channels}"))
    from cnn_jax.models.registry import reference_numbers

    r = reference_numbers().get(a.model)
    if r and size == r.get("input_size") and not a.num_classes:
        print(f"reference: {r['params_exact']:,} params, {r['macs']:,} MACs ({r['variant']})")
    return 0
