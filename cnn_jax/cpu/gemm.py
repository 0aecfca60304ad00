"""1x1 convolutions and bfloat16 dense layers as matrix products, for CPUs where XLA's own
convolutions are slow (conv_impl "gemm" and dense_impl "explicit", chosen in cnn_jax.layers).

A 1x1 convolution is a matmul over the pixels. On the CPU XLA runs convolutions through
Eigen/YNNPACK, whose 1x1 convolutions reach a fraction of the matmul peak, so each becomes
`dot_general`, and autodiff turns its gradients into matmuls too. `matmul`'s VJP computes
the weight gradient as x^T g in the weight's own (C, O) layout, which also spares bfloat16
dense layers a transposition XLA's CPU backend cannot fold (docs/performance.md has the
figures). kxk convolutions stay XLA's, or oneDNN's (cnn_jax.cpu.onednn). The functions
equal `lax.conv_general_dilated` and `lax.dot_general` in value and gradients
(tests/test_conv_gemm.py, tests/test_dense.py).
"""

import jax
import jax.numpy as jnp
from jax import lax


def _dot(a, b, dtype):
    """a @ b over a's last axis with float32 accumulation, result in `dtype`."""
    out = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return out.astype(dtype)


def conv1x1(x, w, strides):
    """A 1x1 convolution, NHWC x (1, 1, C, O), as one matmul over the (strided) pixels."""
    sh, sw = strides
    if sh > 1 or sw > 1:
        x = x[:, ::sh, ::sw]
    return matmul(x, w[0, 0])


@jax.custom_vjp
def matmul(x, w):
    """x (..., C) @ w (C, O) with float32 accumulation, rounded once to x's dtype. Its VJP
    computes the weight gradient as x^T g in w's own (C, O) layout: the 1x1 convolutions'
    product over the pixels, and the dense layers' (cnn_jax.layers.dense)."""
    return _dot(x, w, x.dtype)


def _matmul_fwd(x, w):
    return _dot(x, w, x.dtype), (x, w)


def _matmul_bwd(residuals, g):
    x, w = residuals
    # The weight gradient x^T g contracts over the pixels, so XLA lays one operand out
    # channels-major; left alone it fuses that transposition into the producer of g
    # (BatchNorm's backward), a strided write of the whole activation that takes a large
    # share of a ResNet-50 step. Materialising g first moves the transposition to a separate
    # copy, which makes the whole step faster (docs/performance.md).
    g = lax.optimization_barrier(g)
    dx = lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    dw = lax.dot_general(
        x.reshape(-1, x.shape[-1]),
        g.reshape(-1, g.shape[-1]),
        (((0,), (0,)), ((), ())),
        preferred_element_type=jnp.float32,
    )
    return dx.astype(x.dtype), dw.astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _unpadded(padding) -> bool:
    """No padding for a 1x1 window: explicit zeros, or any string mode ('SAME' pads a 1x1
    window by nothing at every stride)."""
    return isinstance(padding, str) or all(tuple(p) == (0, 0) for p in padding)


def is_1x1(rhs, feature_group_count: int, padding) -> bool:
    """A convolution `conv1x1` computes: ungrouped, a 1x1 window, no padding."""
    return feature_group_count == 1 and rhs.shape[:2] == (1, 1) and _unpadded(padding)
