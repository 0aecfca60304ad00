"""Convolutions: `Conv` (flax's nn.Conv through the conv_impl switch) and `ConvBN`.

conv_impl chooses how convolutions are computed when a model is traced: "xla" is
`lax.conv_general_dilated`; "gemm" computes 1x1 convolutions as matmuls (cnn_jax.cpu.gemm);
"onednn" hands every plain 2-D NHWC convolution to oneDNN (cnn_jax.cpu.onednn). The CPU
forms exist because XLA's CPU convolutions are slow; on GPU/TPU "auto" keeps XLA's.

Padding follows the Caffe/PyTorch convention (explicit, symmetric) rather than XLA's
'SAME', because 'SAME' pads strided convolutions asymmetrically and the reference
implementations (torchvision, Keras applications) do not.
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from cnn_jax.cpu import gemm, onednn
from cnn_jax.errors import UserError
from cnn_jax.layers.batchnorm import BatchNorm
from cnn_jax.layers.switch import TraceSwitch

Dtype = Any
_NHWC = ("NHWC", "HWIO", "NHWC")


def _best_on_cpu() -> str:
    return "gemm" if onednn.unavailable() else "onednn"


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
    why = onednn.unavailable()
    if why:
        raise UserError(f"conv_impl 'onednn' cannot run here: {why}, or use conv_impl=gemm.")


def _is_nhwc(lhs_shape, rhs_shape, dimension_numbers) -> bool:
    want = lax.conv_dimension_numbers(lhs_shape, rhs_shape, _NHWC)
    return lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers) == want


def _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers) -> bool:
    ones = lambda d: d is None or all(v == 1 for v in d)
    return (
        ones(lhs_dilation)
        and ones(rhs_dilation)
        and dimension_numbers is not None
        and _is_nhwc(lhs.shape, rhs.shape, dimension_numbers)
    )


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    batch_group_count=1,
    precision=None,
    preferred_element_type=None,
):
    """Drop-in for `lax.conv_general_dilated` (the signature flax's nn.Conv calls) that
    routes plain 2-D NHWC convolutions to the current backend: ungrouped 1x1 ones for "gemm",
    all of them (grouped and depthwise too) for "onednn"."""
    backend = current_backend()
    plain = (
        backend != "xla"
        and lhs.ndim == 4
        and batch_group_count == 1
        and preferred_element_type is None
        and _plain(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers)
    )
    if plain and backend == "onednn" and onednn.supported(lhs, rhs):
        _require_onednn()
        pads = onednn.explicit_padding(lhs.shape, rhs.shape, tuple(window_strides), padding)
        if all(p >= 0 for pair in pads for p in pair):
            return onednn.conv(lhs, rhs, tuple(window_strides), pads)
    if plain and gemm.is_1x1(rhs, feature_group_count, padding):
        return gemm.conv1x1(lhs, rhs, tuple(window_strides))
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        batch_group_count,
        precision,
        preferred_element_type,
    )


# He et al. 2015 init as torchvision applies it to CNNs (fan_out keeps the
# backward signal at unit variance through ReLU layers).
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


# nn.Conv whose convolution follows `conv_backend` (XLA's by default); every
# model builds its convolutions with this so one switch changes them all.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


def pad_pair(p) -> tuple:
    """An int or (top, bottom)/(left, right) spec -> explicit ((t, b), (l, r))."""
    if isinstance(p, str):
        return p
    if isinstance(p, int):
        return ((p, p), (p, p))
    return tuple((q, q) if isinstance(q, int) else tuple(q) for q in p)


def same_pad(kernel_size) -> tuple:
    """Symmetric padding that keeps the spatial size at stride 1 (odd kernels)."""
    return tuple((k // 2, k // 2) for k in kernel_size)


class ConvBN(nn.Module):
    """Convolution, then BatchNorm, then an activation: the unit most CNNs since 2015 repeat.

    `padding=None` means symmetric "same" padding (k//2), the torchvision/Keras choice.
    """

    features: int
    kernel_size: tuple = (3, 3)
    strides: tuple = (1, 1)
    padding: Any = None
    groups: int = 1
    use_bias: bool = False
    act: Callable | None = nn.relu
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_scale: bool = True
    bn_scale_init: Callable = nn.initializers.ones
    bn_group_size: int = 0  # ghost BN (cnn_jax.layers.batchnorm); 0 = the whole batch
    kernel_init: Callable = he_normal_fan_out
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        pad = same_pad(self.kernel_size) if self.padding is None else pad_pair(self.padding)
        x = Conv(
            self.features,
            self.kernel_size,
            self.strides,
            padding=pad,
            feature_group_count=self.groups,
            use_bias=self.use_bias,
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            name="conv",
        )(x)
        x = BatchNorm(
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            use_scale=self.bn_scale,
            scale_init=self.bn_scale_init,
            group_size=self.bn_group_size,
            dtype=self.dtype,
            name="bn",
        )(x)
        return self.act(x) if self.act is not None else x
