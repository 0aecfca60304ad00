"""Building blocks shared by the model families.

Padding follows the Caffe/PyTorch convention (explicit, symmetric) rather than
XLA's 'SAME', because 'SAME' pads strided convolutions asymmetrically and the
reference implementations (torchvision, Keras applications) do not.
"""

import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.models.batchnorm import BatchNorm
from cnn_jax.models.conv_gemm import conv_general_dilated
from cnn_jax.models.dense import Dense  # noqa: F401  (the models' dense layer, re-exported)
from cnn_jax.models.pooling import max_pool

Dtype = Any

# He et al. 2015 init as torchvision applies it to CNNs (fan_out keeps the
# backward signal at unit variance through ReLU layers).
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


# nn.Conv whose convolution follows `conv_gemm.conv_backend` (XLA's by default); every
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
    bn_group_size: int = 0        # ghost BN (cnn_jax/models/batchnorm.py); 0 = the whole batch
    kernel_init: Callable = he_normal_fan_out
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        pad = same_pad(self.kernel_size) if self.padding is None else pad_pair(self.padding)
        x = Conv(self.features, self.kernel_size, self.strides, padding=pad,
                 feature_group_count=self.groups, use_bias=self.use_bias,
                 kernel_init=self.kernel_init, dtype=self.dtype, name="conv")(x)
        x = BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                      epsilon=self.bn_epsilon, use_scale=self.bn_scale, scale_init=self.bn_scale_init,
                      group_size=self.bn_group_size, dtype=self.dtype, name="bn")(x)
        return self.act(x) if self.act is not None else x


def lrn(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    """Local response normalisation across channels (NHWC), Caffe/PyTorch form.

    Caffe and PyTorch divide alpha by `size`; the AlexNet paper does not. For the
    paper's formula k + alpha * sum(a^2), pass `alpha * size`.
    """
    sq = jax.lax.reduce_window(x * x, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1),
                               ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)))
    return x / (k + alpha / size * sq) ** beta


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


class LRN(nn.Module):
    """Local response normalisation written as in the AlexNet paper (Sec. 3.3):

        b_i = a_i / (k + alpha * sum_{j in the n maps around i} a_j^2) ** beta

    `layers.lrn` is the Caffe/PyTorch form, which divides alpha by n, so we pass
    alpha * n. (Caffe's alpha=1e-4 is therefore alpha=2e-5 here.) Computed in
    float32: in bfloat16, k + alpha * sum would round to k.
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def __call__(self, x):
        y = lrn(x.astype(jnp.float32), self.size, self.alpha * self.size, self.beta, self.k)
        return y.astype(x.dtype)

    def count_macs(self, inputs, outputs):
        return 0  # the reference counts convolution and dense multiply-adds only


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
