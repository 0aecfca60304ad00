"""Fully connected layers whose weight gradient XLA's CPU backend computes in one pass.

JAX differentiates `x @ W` by transposing the forward dot: the kernel's gradient comes out
as `(g^T x)^T`. In float32 XLA folds that transpose into the dot. In bfloat16 it cannot:
its CPU backend computes the dot in float32 and rounds it, and the rounding sits between the
dot and the transpose, so the gradient is written out as (out, in) and transposed
element by element inside the optimizer's update. For AlexNet's FC6 (9216 x 4096, batch 8)
that update took 257 ms instead of 13-21 ms, and bfloat16 trained AlexNet, ZFNet and
VGG at half their float32 speed.

With `dense_impl` "explicit" a bfloat16 dot is `conv_gemm.matmul`, the product the 1x1
convolutions already used, whose VJP computes the kernel's gradient as `x^T g`, written in
the kernel's own (in, out) layout, both products accumulated in float32 and rounded once to
bfloat16, as XLA does (tests/test_dense.py). AlexNet b8 bfloat16, both
programs in one process taking turns: 725 -> 340 ms a step. Float32 dots stay lax's: XLA
already does them well, and float32 runs stay bitwise what they were. "auto" takes
"explicit" on CPU only: GPU/TPU keep JAX's own transpose.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from cnn_jax.models import conv_gemm
from cnn_jax.models.switch import TraceSwitch

SWITCH = TraceSwitch("dense_impl", ("xla", "explicit"), on_cpu="explicit")
resolve = SWITCH.resolve


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """Drop-in for `lax.dot_general` as flax's nn.Dense calls it (the last axis of `lhs`
    against the first of a 2-D `rhs`): bfloat16 ones through `conv_gemm.matmul` under "explicit",
    everything else through lax's."""
    (lc, rc), (lb, rb) = dimension_numbers
    dense = (tuple(lc) == (lhs.ndim - 1,) and tuple(rc) == (0,) and not lb and not rb and rhs.ndim == 2
             and lhs.dtype == rhs.dtype == jnp.bfloat16 and preferred_element_type is None)
    if SWITCH.current() != "explicit" or not dense:
        return lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type)
    return conv_gemm.matmul(lhs, rhs)


# nn.Dense whose product follows `dense_impl`; every model builds its dense layers with this.
Dense = functools.partial(nn.Dense, dot_general=dot_general)
