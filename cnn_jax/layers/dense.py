"""Fully connected layers: `Dense` (flax's nn.Dense through the dense_impl switch).

dense_impl chooses how a bfloat16 dense layer's product is computed when a model is traced:
"xla" is `lax.dot_general`, whose transposed weight gradient XLA's CPU backend cannot fold
into the dot in bfloat16; "explicit" is `cnn_jax.cpu.gemm.matmul`, whose VJP writes the
weight gradient in the kernel's own layout. Float32 dots always stay lax's, so float32
runs are bitwise the same under either choice.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from cnn_jax.cpu import gemm
from cnn_jax.layers.switch import TraceSwitch

SWITCH = TraceSwitch("dense_impl", ("xla", "explicit"), on_cpu="explicit")
resolve = SWITCH.resolve


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """Drop-in for `lax.dot_general` as flax's nn.Dense calls it (the last axis of `lhs`
    against the first of a 2-D `rhs`): bfloat16 ones through `gemm.matmul` under "explicit",
    everything else through lax's."""
    (lc, rc), (lb, rb) = dimension_numbers
    dense = (
        tuple(lc) == (lhs.ndim - 1,)
        and tuple(rc) == (0,)
        and not lb
        and not rb
        and rhs.ndim == 2
        and lhs.dtype == rhs.dtype == jnp.bfloat16
        and preferred_element_type is None
    )
    if SWITCH.current() != "explicit" or not dense:
        return lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)
    return gemm.matmul(lhs, rhs)


# nn.Dense whose product follows `dense_impl`; every model builds its dense layers with this.
Dense = functools.partial(nn.Dense, dot_general=dot_general)
