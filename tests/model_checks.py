"""Shared assertions for the model-zoo tests: parameters, MACs and output shapes vs the reference."""

import jax
import jax.numpy as jnp

from cnn_jax import models
from cnn_jax.models.registry import reference_numbers
from cnn_jax.report.summary import summarize


def native_shape(name: str, batch: int = 1) -> tuple:
    spec = models.get_spec(name)
    return (batch, spec.input_size, spec.input_size, spec.in_channels)


def check_params_and_macs(name: str):
    """Trainable parameters and MACs (summarize: jax.eval_shape, batch 1, native size) equal to
    reference.json's figures exactly: both count conv and dense multiply-adds only."""
    ref = reference_numbers()[name]
    s = summarize(models.create_model(name), native_shape(name))
    assert ref["input_size"] == native_shape(name)[1], (name, ref["input_size"])
    assert s.total_params == ref["params_exact"], (name, s.total_params, ref["params_exact"])
    assert s.total_macs == ref["macs"], (name, s.total_macs, ref["macs"])
    return s


def output_shape(name: str, num_classes: int, batch: int = 2, dtype=jnp.float32, train=False):
    model = models.create_model(name, num_classes=num_classes, dtype=dtype)
    x = jax.ShapeDtypeStruct(native_shape(name, batch), jnp.float32)

    def run(x):
        variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False)
        return model.apply(
            variables, x, train=train, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"] if train else False
        )

    out = jax.eval_shape(run, x)
    return out
