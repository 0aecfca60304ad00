"""VGG (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for
Large-Scale Image Recognition"), Table 1 configurations A to E.

Each configuration lists the conv stack in order: an int is a 3x3 conv of that
width (stride 1, pad 1), `(width, 1)` a 1x1 conv (config C), "M" a 2x2/2
max-pool and "LRN" local response normalisation (A-LRN, with AlexNet's
constants, Sec. 2.3). Every conv is followed by a ReLU. Then FC-4096, FC-4096
(dropout 0.5 on both, Sec. 3.1) and FC-1000.

    name       config  weight layers  params
    vgg11      A       11             132,863,336
    vgg11_lrn  A-LRN   11             132,863,336 (LRN has no parameters)
    vgg13      B       13             133,047,848
    vgg16_c    C       16             133,638,952
    vgg16      D       16             138,357,544
    vgg19      E       19             143,667,240

`vggNN_bn` are torchvision's variants (not in the paper): BatchNorm between
every conv (which keeps its bias) and its ReLU, epsilon 1e-5.

Input size. The paper trains on 224x224 crops, where the conv stack leaves a
7x7x512 map and FC6 sees exactly that. Two ways to feed other sizes:
- `fully_convolutional=False` (default, torchvision): the map is first
  adaptively average-pooled to 7x7 (torch's AdaptiveAvgPool2d windows), which
  is the identity at 224. Any input of at least 32x32 gives logits, but above
  224 each FC6 input is a blur of neighbouring positions, not the paper's.
- `fully_convolutional=True` (the paper's dense evaluation, Sec. 3.2): FC6
  becomes a 7x7 convolution and FC7/FC8 1x1 convolutions with the very same
  parameters, slid over the whole map; the class score map is spatially
  averaged. At 224 both modes give the same logits; inputs need >= 224.

FC6 rows are ordered (h, w, c) of the NHWC map; torch/Caffe weights are
(c, h, w) and must be permuted on import. Init follows torchvision (He
fan-out normal for convs, N(0, 0.01) for FC layers, zero biases): the paper
instead initialised the deeper nets from net A, or with Glorot init.
"""

import functools
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.errors import UserError
from cnn_jax.layers import (
    LRN,
    Conv,
    ConvBN,
    adaptive_avg_pool,
    conv_general_dilated,
    dot_general,
    he_normal_fan_out,
    max_pool,
)
from cnn_jax.models.registry import register

M = "M"
CONFIGS = {
    "A": (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M),
    "A-LRN": (64, "LRN", M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M),
    "B": (64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M),
    "C": (64, 64, M, 128, 128, M, 256, 256, (256, 1), M, 512, 512, (512, 1), M,
          512, 512, (512, 1), M),
    "D": (64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M),
    "E": (64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M,
          512, 512, 512, 512, M),
}
POOLED_SIZE = 7  # 224 / 2**5: the map FC6 was designed for


class FullyConnected(nn.Module):
    """A dense layer over a `window` x `window` map that can also slide over a larger one.

    Its parameters are exactly those of nn.Dense on the flattened window
    (kernel (window*window*C, features), bias), so the same variables serve
    both modes: `convolutional=False` flattens the input (which must be the
    window, or already flat), `convolutional=True` reshapes the kernel to
    (window, window, C, features) and convolves (VALID) over the map.
    """

    features: int
    window: int = 1
    convolutional: bool = False
    kernel_init: Callable = nn.initializers.normal(0.01)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c, w = x.shape[-1], self.window
        kernel = self.param("kernel", self.kernel_init, (w * w * c, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        kernel, bias = kernel.astype(self.dtype), bias.astype(self.dtype)
        x = x.astype(self.dtype)
        if not self.convolutional:
            if x.ndim == 4 and x.shape[1:3] != (w, w):
                raise ValueError(f"{self.name} expects a {w}x{w} map, got {x.shape[1:3]}")
            return dot_general(x.reshape(x.shape[0], -1), kernel, (((1,), (0,)), ((), ()))) + bias
        if min(x.shape[1:3]) < w:
            raise UserError(f"The fully-convolutional VGG needs a feature map of at least {w}x{w} "
                            f"before {self.name}, got {x.shape[1]}x{x.shape[2]}; use inputs of "
                            "at least 224x224 or fully_convolutional=False.")
        y = conv_general_dilated(x, kernel.reshape(w, w, c, self.features), (1, 1),
                                           "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias

    def count_macs(self, inputs, outputs):
        positions = 1
        for n in outputs.shape[1:-1]:
            positions *= n
        return positions * self.window ** 2 * inputs.shape[-1] * self.features


class VGG(nn.Module):
    config: tuple                          # Table 1 column, see CONFIGS
    batch_norm: bool = False               # torchvision's *_bn variants
    num_classes: int = 1000
    fc_features: tuple = (4096, 4096)      # FC6, FC7
    dropout_rate: float = 0.5
    fully_convolutional: bool = False      # the paper's dense evaluation (Sec. 3.2)
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    def _conv(self, width: int, kernel: int, name: str):
        if self.batch_norm:
            return ConvBN(width, (kernel, kernel), use_bias=True, bn_momentum=self.bn_momentum,
                          bn_epsilon=self.bn_epsilon, bn_group_size=self.bn_group_size, dtype=self.dtype,
                          name=name)
        conv = Conv(width, (kernel, kernel), padding=((kernel // 2,) * 2,) * 2,
                    kernel_init=he_normal_fan_out, dtype=self.dtype, name=name)
        return lambda x, train: nn.relu(conv(x))

    def features(self, x, train: bool):
        block, index = 1, 1
        for entry in self.config:
            if entry == M:
                x = max_pool(x, (2, 2), (2, 2))
                block, index = block + 1, 1
            elif entry == "LRN":
                x = LRN(name=f"lrn{block}")(x)
            else:
                width, kernel = entry if isinstance(entry, tuple) else (entry, 3)
                x = self._conv(width, kernel, f"conv{block}_{index}")(x, train)
                index += 1
        return x

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.features(x.astype(self.dtype), train)
        if not self.fully_convolutional:
            x = adaptive_avg_pool(x, POOLED_SIZE)
        fc = functools.partial(FullyConnected, convolutional=self.fully_convolutional,
                               dtype=self.dtype)
        window = POOLED_SIZE
        for j, width in enumerate(self.fc_features, start=6):
            x = nn.relu(fc(width, window, name=f"fc{j}")(x))
            x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
            window = 1
        x = fc(self.num_classes, window, name=f"fc{6 + len(self.fc_features)}")(x)
        if self.fully_convolutional:
            x = jnp.mean(x, axis=(1, 2))  # average the class score map
        return x.astype(jnp.float32)


_PAPER_NAMES = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C",
                "vgg16": "D", "vgg19": "E"}
_BN_NAMES = {"vgg11_bn": "A", "vgg13_bn": "B", "vgg16_bn": "D", "vgg19_bn": "E"}

for _name, _cfg in _PAPER_NAMES.items():
    register(_name, functools.partial(VGG, CONFIGS[_cfg]), family="vgg", input_size=224,
             description=f"VGG config {_cfg} (paper Table 1), no BN")
for _name, _cfg in _BN_NAMES.items():
    register(_name, functools.partial(VGG, CONFIGS[_cfg], True), family="vgg", input_size=224,
             description=f"VGG config {_cfg} with BN after every conv (torchvision)")
