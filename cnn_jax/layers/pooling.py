"""Pooling: max pooling (through the pool_impl switch), Caffe/PyTorch ceil-mode max pooling,
global and adaptive average pooling.

pool_impl chooses how max pooling is computed when a model is traced: "xla" is
`flax.linen.max_pool` (JAX's reduce-window and its gradient), "offsets" the CPU form in
cnn_jax.cpu.pool_offsets, whose gradient XLA's CPU backend runs several times faster.
"""

import math

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

from cnn_jax.cpu.pool_offsets import max_pool_offsets
from cnn_jax.layers.switch import TraceSwitch

SWITCH = TraceSwitch("pool_impl", ("xla", "offsets"), on_cpu="offsets")
IMPLS = SWITCH.choices
pool_impl, resolve = SWITCH.use, SWITCH.resolve


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """flax.linen.max_pool over NHWC (or HWC) input, by the implementation `pool_impl` names."""
    strides = tuple(strides or (1,) * len(window_shape))
    if SWITCH.current() == "xla" or len(window_shape) != 2 or x.ndim not in (3, 4):
        return nn.max_pool(x, window_shape, strides, padding)
    if x.ndim == 3:
        return max_pool(x[None], window_shape, strides, padding)[0]
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], window_shape, strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    return max_pool_offsets(x, tuple(window_shape), strides, pads)


def _ceil_mode_pad(n: int, k: int, s: int, p: int) -> tuple:
    out = math.ceil((n + 2 * p - k) / s) + 1
    if (out - 1) * s >= n + p:  # the last window must start inside the input or left padding
        out -= 1
    return (p, (out - 1) * s + k - n - p)


def max_pool_ceil(x, k: int, s: int, p: int = 0):
    """Max pooling with Caffe/PyTorch `ceil_mode=True` output sizes ('SAME' differs at odd sizes)."""
    pads = tuple(_ceil_mode_pad(n, k, s, p) for n in x.shape[1:3])
    return max_pool(x, (k, k), (s, s), pads)


def global_avg_pool(x):
    return jnp.mean(x, axis=(1, 2))


def _adaptive_pool_matrix(n: int, out: int) -> np.ndarray:
    """(out, n) averaging weights of torch's adaptive pooling: window i is
    [floor(i*n/out), ceil((i+1)*n/out))."""
    m = np.zeros((out, n), np.float32)
    for i in range(out):
        lo, hi = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def adaptive_avg_pool(x, size: int):
    """torch.nn.AdaptiveAvgPool2d(size) on NHWC; the identity on a size x size map."""
    h, w = x.shape[1:3]
    if (h, w) == (size, size):
        return x
    mh = jnp.asarray(_adaptive_pool_matrix(h, size), x.dtype)
    mw = jnp.asarray(_adaptive_pool_matrix(w, size), x.dtype)
    return jnp.einsum("ih,jw,nhwc->nijc", mh, mw, x)
