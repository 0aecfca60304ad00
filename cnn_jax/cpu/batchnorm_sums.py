"""BatchNorm's training-mode function from per-channel sums, with a written-out backward
pass (bn_impl "sums", chosen in cnn_jax.layers.batchnorm).

Autodiff of flax's BatchNorm re-reads the activation more often than needed; here the
backward pass is two per-channel sums and one multiply-add pass for the input gradient.
Outputs and gradients equal flax's to ~1e-6 (tests/test_batchnorm_sums.py); the measured
effect on a training step is in docs/performance.md.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax


def _reduction(x) -> tuple:
    """The axes BatchNorm reduces (all but the last, the channels) and how many values each channel has."""
    return tuple(range(x.ndim - 1)), x.size // x.shape[-1]


def _moments(x):
    """Per-channel mean and variance over all axes but the last (flax's fast variance, clipped)."""
    axes, n = _reduction(x)
    mean = jnp.sum(x, axes) / n
    return mean, jnp.maximum(jnp.sum(x * x, axes) / n - mean * mean, 0.0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def normalize_from_sums(x, scale, bias, epsilon):
    """(x - mean) / sqrt(var + eps) * scale + bias, and the batch mean and variance.

    The backward pass is written out: two per-channel sums, sum(g) and sum(g * x), then one
    elementwise pass for dx. Autodiff of flax's form re-reads the activation more often.
    x - mean is always formed before scaling (as flax does): on nearly constant
    channels k = scale / sqrt(var + eps) is large, and x * k - mean * k would cancel."""
    return _normalize_fwd(x, scale, bias, epsilon)[0]


def _normalize_fwd(x, scale, bias, epsilon):
    mean, var = _moments(x)
    inv = lax.rsqrt(var + epsilon)
    y = (x - mean) * (inv * scale) + bias
    return (y, mean, var), (x, mean, inv, scale)


def _normalize_bwd(epsilon, residuals, cotangents):
    x, mean, inv, scale = residuals
    g, g_mean, g_var = cotangents
    axes, n = _reduction(x)
    sum_g = jnp.sum(g, axes)
    # sum(g * (x - mean)) as sum(g * x) - mean * sum(g): XLA's CPU reductions (YNNPACK) take a
    # product into their pass but not a per-channel subtraction, so the centred form would
    # write x - mean out as a whole activation first, an extra pass over it. The variance already
    # comes from uncentred sums (flax's fast variance), with the same cancellation.
    sum_gxc = jnp.sum(g * x, axes) - mean * sum_g
    k = inv * scale
    # dx = k * (g - mean(g) - xhat * mean(g * xhat)) through x, the mean and the variance, plus
    # the batch statistics' own cotangents (zero in training, which only reads them), arranged
    # as k * g + a * (x - mean) + b so that the pass over the activation is one multiply-add.
    a = 2.0 * g_var / n - k * inv * inv * sum_gxc / n
    b = (g_mean - k * sum_g) / n
    dx = k * g + a * (x - mean) + b
    return dx, sum_gxc * inv, sum_g


normalize_from_sums.defvjp(_normalize_fwd, _normalize_bwd)
