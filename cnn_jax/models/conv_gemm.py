"""Convolutions as matrix products, for CPUs where XLA's own convolutions are slow.

On the CPU XLA runs convolutions through Eigen/YNNPACK. Its 1x1 convolutions reach a
fraction of the matmul peak (a ResNet-50 1x1 at 56x56: 10-40 GFLOP/s in each direction,
against 30-175 for the same product written as `dot_general`). A 1x1 convolution *is* a
matmul over the pixels, so with the backend "gemm" every 1x1 convolution (any stride, no
padding) becomes `dot_general`, and autodiff turns its gradients into matmuls too.

Under "gemm" kxk convolutions stay XLA's (the backend "onednn", conv_onednn.py, takes every
convolution where oneDNN runs): computing their weight gradient as im2col patches^T @ dY was
tried and lost everywhere measured (ResNet-20's 16-64 channel layers ran 2-3x slower: the
patch concatenation of narrow channels dominated the step; at ResNet-50's widths 1.3-2x).

The backend computes the same function as `lax.conv_general_dilated` (tests/test_conv_gemm.py
checks outputs and both gradients). It is chosen at trace time by `conv_backend` (or a
TrainState's `apply_fn` wrapped by `impls.wrap`); it is meant for CPUs: on GPU/TPU XLA's
convolutions are the fast path, so keep "xla" there.
"""

import jax
import jax.numpy as jnp
from jax import lax

from cnn_jax.errors import UserError
from cnn_jax.models import conv_onednn
from cnn_jax.models.switch import TraceSwitch

_NHWC = ("NHWC", "HWIO", "NHWC")


def _best_on_cpu() -> str:
    return "gemm" if conv_onednn.unavailable() else "onednn"


# Chosen when a model is traced; "auto" resolves to "onednn" on CPU where oneDNN is
# installed (else "gemm"), and to "xla" elsewhere.
SWITCH = TraceSwitch("conv_impl", ("xla", "gemm", "onednn"), on_cpu=_best_on_cpu)
BACKENDS = SWITCH.choices
conv_backend, current_backend = SWITCH.use, SWITCH.current


def resolve(name: str, platform: str) -> str:
    """`auto` as this platform's backend; "onednn" refused where it cannot run."""
    name = SWITCH.resolve(name, platform)
    if name == "onednn":
        if platform != "cpu":
            raise UserError(f"conv_impl 'onednn' runs on CPUs only; use conv_impl=auto or xla on {platform}.")
        _require_onednn()
    return name


def _require_onednn() -> None:
    why = conv_onednn.unavailable()
    if why:
        raise UserError(f"conv_impl 'onednn' cannot run here: {why}, or use conv_impl=gemm.")


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
    product over the pixels, and the dense layers' (models/dense.py)."""
    return _dot(x, w, x.dtype)


def _matmul_fwd(x, w):
    return _dot(x, w, x.dtype), (x, w)


def _matmul_bwd(residuals, g):
    x, w = residuals
    # The weight gradient x^T g contracts over the pixels, so XLA lays one operand out
    # channels-major; left alone it fuses that transposition into the producer of g
    # (BatchNorm's backward), a strided write of the whole activation that took a third of
    # ResNet-50's step. Materialising g first moves it to a separate copy: 1.25x per step.
    g = lax.optimization_barrier(g)
    dx = lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    dw = lax.dot_general(x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1]), (((0,), (0,)), ((), ())),
                         preferred_element_type=jnp.float32)
    return dx.astype(x.dtype), dw.astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _is_nhwc(lhs_shape, rhs_shape, dimension_numbers) -> bool:
    want = lax.conv_dimension_numbers(lhs_shape, rhs_shape, _NHWC)
    return lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers) == want


def _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers) -> bool:
    ones = lambda d: d is None or all(v == 1 for v in d)
    return (ones(lhs_dilation) and ones(rhs_dilation)
            and dimension_numbers is not None and _is_nhwc(lhs.shape, rhs.shape, dimension_numbers))


def _unpadded(padding) -> bool:
    """No padding for a 1x1 window: explicit zeros, or any string mode ('SAME' pads a 1x1
    window by nothing at every stride)."""
    return isinstance(padding, str) or all(tuple(p) == (0, 0) for p in padding)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
    """Drop-in for `lax.conv_general_dilated` (the signature flax's nn.Conv calls) that
    routes plain 2-D NHWC convolutions to the current backend: ungrouped 1x1 ones for "gemm",
    all of them (grouped and depthwise too) for "onednn"."""
    backend = current_backend()
    plain = (backend != "xla" and lhs.ndim == 4 and batch_group_count == 1 and preferred_element_type is None
             and _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers))
    if plain and backend == "onednn" and conv_onednn.supported(lhs, rhs):
        _require_onednn()
        pads = conv_onednn.explicit_padding(lhs.shape, rhs.shape, tuple(window_strides), padding)
        if all(p >= 0 for pair in pads for p in pair):
            return conv_onednn.conv(lhs, rhs, tuple(window_strides), pads)
    if plain and feature_group_count == 1 and rhs.shape[:2] == (1, 1) and _unpadded(padding):
        return conv1x1(lhs, rhs, tuple(window_strides))
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, batch_group_count,
                                    precision, preferred_element_type)
