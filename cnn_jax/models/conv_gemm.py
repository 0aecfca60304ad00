"""Convolutions as matrix products, for CPUs where XLA's own convolutions are slow.

On the CPU XLA emits convolutions through Eigen. Its 1x1 convolutions run at a fraction
of the matmul peak (a ResNet-50 1x1 at 56x56 ran 10-40 GFLOP/s against 80-175 for the
same product as `dot_general`), and the weight gradient of every convolution is the
worst part (10-30 GFLOP/s at 56x56). A 1x1 convolution *is* a matmul over the pixels, and
a kxk weight gradient is a matmul of the input's patches with the output gradient. So
with the backend "gemm":

- 1x1 convolutions (any stride, no padding) become `dot_general`, in both directions;
- kxk convolutions keep XLA's forward and input gradient (fast enough) and compute the
  weight gradient as patches^T @ dY.

Every path computes the same function as `lax.conv_general_dilated` (tests/test_conv_gemm.py
checks outputs and both gradients). The backend is chosen at trace time by `conv_backend`;
it is meant for CPUs: on GPU/TPU XLA's convolutions are the fast path, so keep "xla" there.
"""

import contextlib
import functools

import jax
import jax.numpy as jnp
from jax import lax

BACKENDS = ("xla", "gemm")
_NHWC = ("NHWC", "HWIO", "NHWC")
_current = ["xla"]


@contextlib.contextmanager
def conv_backend(name: str):
    """Trace convolutions inside this block with backend `name` (see BACKENDS)."""
    if name not in BACKENDS:
        from cnn_jax.errors import UserError
        raise UserError(f"Unknown conv_impl {name!r}; use one of {', '.join(BACKENDS)}.")
    _current.append(name)
    try:
        yield
    finally:
        _current.pop()


def current_backend() -> str:
    return _current[-1]


def with_backend(apply_fn, name: str):
    """`apply_fn` tracing its convolutions with backend `name`, e.g. a TrainState's apply_fn."""
    with conv_backend(name):  # checks the name now, not at the first trace
        pass
    if name == "xla":
        return apply_fn

    @functools.wraps(apply_fn)
    def apply(*args, **kwargs):
        with conv_backend(name):
            return apply_fn(*args, **kwargs)
    return apply


def _dot(a, b, dtype):
    """a @ b over a's last axis with float32 accumulation, result in `dtype`."""
    out = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return out.astype(dtype)


def conv1x1(x, w, strides):
    """A 1x1 convolution, NHWC x (1, 1, C, O), as one matmul over the (strided) pixels."""
    sh, sw = strides
    if sh > 1 or sw > 1:
        x = x[:, ::sh, ::sw]
    return _dot(x, w[0, 0], x.dtype)


def patches(x, kernel: tuple, strides: tuple, padding: tuple):
    """im2col: (N, H', W', kh*kw*C), the window of every output pixel, ordered like
    w.reshape(kh*kw*C, O)."""
    (kh, kw), (sh, sw) = kernel, strides
    xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    cols = [xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    return jnp.concatenate(cols, axis=-1)


def _xla_conv(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_gemm_grad(x, w, strides, padding):
    """A kxk convolution whose weight gradient is a matmul of patches and output gradient."""
    return _xla_conv(x, w, strides, padding)


def _conv_fwd(x, w, strides, padding):
    return _xla_conv(x, w, strides, padding), (x, w)


def _conv_bwd(strides, padding, residuals, g):
    x, w = residuals
    _, input_vjp = jax.vjp(lambda x_: _xla_conv(x_, w, strides, padding), x)
    (dx,) = input_vjp(g)
    cols = patches(x, w.shape[:2], strides, padding)
    n = cols.shape[0] * cols.shape[1] * cols.shape[2]
    dw = lax.dot_general(cols.reshape(n, -1), g.reshape(n, -1), (((0,), (0,)), ((), ())),
                         preferred_element_type=jnp.float32)
    return dx, dw.reshape(w.shape).astype(w.dtype)


conv_gemm_grad.defvjp(_conv_fwd, _conv_bwd)


def _is_nhwc(lhs_shape, rhs_shape, dimension_numbers) -> bool:
    want = lax.conv_dimension_numbers(lhs_shape, rhs_shape, _NHWC)
    return lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers) == want


def _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count) -> bool:
    ones = lambda d: d is None or all(v == 1 for v in d)
    return (ones(lhs_dilation) and ones(rhs_dilation) and feature_group_count == 1
            and dimension_numbers is not None and _is_nhwc(lhs.shape, rhs.shape, dimension_numbers))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
    """Drop-in for `lax.conv_general_dilated` (the signature flax's nn.Conv calls) that
    routes plain 2-D NHWC convolutions to the current backend."""
    plain = (current_backend() == "gemm" and lhs.ndim == 4 and batch_group_count == 1
             and preferred_element_type is None and not isinstance(padding, str)
             and _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count))
    if plain:
        padding = tuple(tuple(p) for p in padding)
        strides = tuple(window_strides)
        if rhs.shape[:2] == (1, 1) and padding == ((0, 0), (0, 0)):
            return conv1x1(lhs, rhs, strides)
        return conv_gemm_grad(lhs, rhs, strides, padding)
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, batch_group_count,
                                    precision, preferred_element_type)
