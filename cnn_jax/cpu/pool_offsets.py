"""Max pooling by saved window offsets (pool_impl "offsets", chosen in cnn_jax.layers.pooling).

JAX differentiates `lax.reduce_window(max)` through a variadic argmax reduce-window and a
scatter, neither of which XLA's CPU backend runs fast. Here the forward pass reads the
kh*kw strided views of the padded input once, for the maximum and for the first window
offset that holds it (an int8 per output); the backward pass scatters the cotangent by
those offsets, one interior-padded copy per offset, all elementwise. The first maximum in
row-major window order receives the gradient, as in XLA's select-and-scatter and PyTorch.
Values equal JAX's, the input gradient to float32 summation order (tests/test_pooling.py).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _offsets(window) -> list:
    return [(i, j) for i in range(window[0]) for j in range(window[1])]


def _out_size(n: int, k: int, s: int, pad: tuple) -> int:
    return (n + pad[0] + pad[1] - k) // s + 1


def _views(x, window, strides, pads) -> list:
    """Per window offset (row-major), the padded input's strided view: view k at (i, j)
    is the element at offset k of output (i, j)'s window."""
    n, h, w, c = x.shape
    ho, wo = (_out_size(d, k, s, p) for d, k, s, p in zip((h, w), window, strides, pads))
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    sh, sw = strides
    return [
        lax.slice(xp, (0, i, j, 0), (n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c), (1, sh, sw, 1))
        for i, j in _offsets(window)
    ]


def _offset_dtype(window):
    return jnp.int8 if window[0] * window[1] < 127 else jnp.int32


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_offsets(x, window, strides, pads):
    """Max pooling of NHWC `x` with explicit `pads` ((t, b), (l, r))."""
    return _max_pool_fwd(x, window, strides, pads)[0]


def _max_pool_fwd(x, window, strides, pads):
    views = _views(x, window, strides, pads)
    y = functools.reduce(jnp.maximum, views)
    # Comparisons in float32 against the pooled output, which the next layer reads and so is
    # kept as an array anyway: XLA's CPU backend recomputes `first` inside each of the
    # backward pass's kh*kw padded copies, and from bfloat16 views (a conversion per
    # comparison, and the maximum itself recomputed) the stem's pool gradient becomes a
    # large share of a bfloat16 ResNet-18 step.
    wide = jnp.promote_types(x.dtype, jnp.float32)
    y_wide = y.astype(wide)
    first = jnp.full(y.shape, len(views), _offset_dtype(window))
    for k in reversed(range(len(views))):
        first = jnp.where(views[k].astype(wide) == y_wide, jnp.asarray(k, first.dtype), first)
    return y, (first, x.shape)


def _max_pool_bwd(window, strides, pads, residuals, g):
    first, (n, h, w, c) = residuals
    (top, bottom), (left, right) = pads
    hp, wp = h + top + bottom, w + left + right
    ho, wo = g.shape[1:3]
    sh, sw = strides
    # Overlapping windows' shares are summed in float32 and rounded once: summed in bfloat16,
    # rounding after every offset, the stem's pool gradient runs more than twice as slow on
    # XLA's CPU backend (then see _zero_from_sum).
    dtype, g = g.dtype, g.astype(jnp.promote_types(g.dtype, jnp.float32))
    exact_zero = _zero_from_sum(g)
    dxp = jnp.zeros((n, hp, wp, c), g.dtype)
    for k, (i, j) in enumerate(_offsets(window)):
        # Output (oi, oj)'s window element at offset (i, j) is padded input (oi*sh+i, oj*sw+j).
        placed = lax.pad(
            jnp.where(first == k, g, 0.0),
            jnp.zeros((), g.dtype),
            ((0, 0, 0), (i, hp - i - (ho - 1) * sh - 1, sh - 1), (j, wp - j - (wo - 1) * sw - 1, sw - 1), (0, 0, 0)),
        )
        dxp = dxp + placed
    return ((dxp[:, top : top + h, left : left + w, :] + exact_zero).astype(dtype),)


def _zero_from_sum(g):
    """Per example, an exact zero computed from the sum of `g`. XLA's CPU backend otherwise
    recomputes `g`'s producers (the incoming gradients' sum and conversions) inside each
    padded copy that reads it; a reduction needs `g` as an array, so adding this zero to the
    result makes XLA compute `g` once, which makes the stem pool's gradient in a bfloat16
    ResNet-18 step several times faster. Summed per example, a batch split over devices
    needs no communication."""
    total = jnp.sum(g, axis=tuple(range(1, g.ndim)), keepdims=True)
    return jnp.where(jnp.isfinite(total), total * 0, 0).astype(g.dtype)


max_pool_offsets.defvjp(_max_pool_fwd, _max_pool_bwd)
