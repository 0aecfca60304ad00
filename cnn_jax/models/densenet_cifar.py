"""DenseNet and DenseNet-BC for CIFAR (Huang, Liu, van der Maaten & Weinberger 2017,
"Densely Connected Convolutional Networks"), Table 2, 32x32 input.

    name                 L    k   BC   layers/block  stem  params (10 classes)  C10+ / C10 error
    densenet40_k12       40   12  no   12            16     1,019,722           5.24 / 7.00 %
    densenet100_k12      100  12  no   32            16     6,979,642           4.10 / 5.77 %
    densenet_bc100_k12   100  12  yes  16            24       769,162           4.51 / 5.92 %
    densenet_bc250_k24   250  24  yes  41            48    15,324,406           3.62 / 5.19 %
    densenet_bc190_k40   190  40  yes  31            80    25,624,430           3.46 / -

    stem         conv 3x3 pad 1                                           32x32
    dense block  n x [BN-ReLU-conv k 3x3]                   (DenseNet,    L = 3n + 4)
                 n x [BN-ReLU-conv 4k 1x1, BN-ReLU-conv k 3x3]  (BC,      L = 6n + 4)
                 each layer's k new maps concatenated to its input
    transition   BN-ReLU-conv 1x1 to floor(maps * theta), avg-pool 2x2/2  16x16, 8x8
                 (theta = 1 for DenseNet, 0.5 for BC; after blocks 1 and 2)
    head         BN, ReLU, global average pool, fc (with bias)

Built as the authors' Torch code (liuzhuang13/DenseNet, densenet.lua) builds them,
which is what the parameter counts above are: the stem has 16 maps for DenseNet and 2k
for DenseNet-BC (paper Sec. 3; the first densenet.lua had 16, its BC version 2k; with
2k, L=40 k=12 would have 1,059,298); no conv has a bias (cuDNN >= 4 drops them);
dropout, when on, follows every conv but the stem, the 1x1s of bottlenecks and
transitions included. The paper uses dropout 0.2 only without data augmentation (C10,
C100): `drop_rate`, default 0 (the C10+ setting). Init as the reference: convs
N(0, 2 / (kh kw out)), the distribution of `he_normal_fan_out` (`conv_init` draws it in
a form that compiles faster); BN gamma 1, beta 0; the fc keeps Torch's default
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights with a zero bias. BatchNorm is Torch's
(epsilon 1e-5, running averages updated by 0.1). Global average pooling (the
reference's 8x8 pool at 32x32) lets any input size through, e.g. 28x28 MNIST.
0.265 / 1.770 / 0.288 / 5.419 / 9.302 GMACs at 32x32 (the order of the table).
"""

import functools
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.layers import BatchNorm, Conv, Dense, global_avg_pool
from cnn_jax.models.registry import register

# name: (depth L, growth rate k, bottleneck + compression "BC")
CONFIGS = {"densenet40_k12": (40, 12, False),
           "densenet100_k12": (100, 12, False),
           "densenet_bc100_k12": (100, 12, True),
           "densenet_bc250_k24": (250, 24, True),
           "densenet_bc190_k40": (190, 40, True)}
BOTTLENECK = 4  # a BC layer's 1x1 conv has 4k maps
# Torch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) has variance 1/(3 fan_in).
torch_linear_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def conv_init(key, shape, dtype=jnp.float32):
    """The reference's N(0, 2 / (kh kw out)) (He normal over fan_out), drawn as the first
    elements of a power-of-two long vector: XLA on CPU compiles a random draw per distinct
    shape, and nearly every kernel of a DenseNet has its own (DenseNet-40's initialisation
    took 95 s of CPU time to compile, 7 s with these few lengths)."""
    n = math.prod(shape)
    draws = jax.random.normal(key, (1 << (n - 1).bit_length(),), dtype)
    return draws[:n].reshape(shape) * math.sqrt(2.0 / (math.prod(shape[:-2]) * shape[-1]))


def layers_per_block(depth: int, bc: bool) -> int:
    """L counts the stem, the convs of the three blocks, two transitions and the fc."""
    convs_per_layer = 2 if bc else 1
    n, rest = divmod(depth - 4, 3 * convs_per_layer)
    if n < 1 or rest:
        raise ValueError(f"depth {depth} is not {3 * convs_per_layer}n+4")
    return n


class BNReLUConv(nn.Module):
    """BN -> ReLU -> conv (no bias, 'same') -> dropout: the reference's composite unit."""

    features: int
    kernel: int
    drop_rate: float
    bn: Callable
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.relu(self.bn(name="bn")(x, use_running_average=not train))
        pad = ((self.kernel // 2, self.kernel // 2),) * 2
        x = Conv(self.features, (self.kernel, self.kernel), padding=pad, use_bias=False,
                 kernel_init=conv_init, dtype=self.dtype, name="conv")(x)
        return nn.Dropout(self.drop_rate)(x, deterministic=not train)


class DenseLayer(nn.Module):
    """[BN-ReLU-conv 4k 1x1,] BN-ReLU-conv k 3x3; output = concat(input, k new maps)."""

    growth_rate: int
    bottleneck: bool
    drop_rate: float
    bn: Callable
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        unit = functools.partial(BNReLUConv, drop_rate=self.drop_rate, bn=self.bn, dtype=self.dtype)
        y = x
        if self.bottleneck:
            y = unit(BOTTLENECK * self.growth_rate, 1, name="unit1")(y, train)
        y = unit(self.growth_rate, 3, name="unit2")(y, train)
        return jnp.concatenate([x, y], axis=-1)


class DenseNetCifar(nn.Module):
    depth: int = 40
    growth_rate: int = 12
    bc: bool = False                  # bottleneck layers and compression 0.5
    num_classes: int = 10
    drop_rate: float = 0.0            # 0.2 in the paper's runs without augmentation
    bn_momentum: float = 0.9          # Torch's momentum 0.1
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = functools.partial(BatchNorm, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                               group_size=self.bn_group_size, dtype=self.dtype)
        n = layers_per_block(self.depth, self.bc)
        compression = 0.5 if self.bc else 1.0
        stem = 2 * self.growth_rate if self.bc else 16
        # The stem is a bare conv: its BN-ReLU is the first dense layer's.
        x = Conv(stem, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                 kernel_init=conv_init, dtype=self.dtype, name="stem")(x.astype(self.dtype))
        for b in range(1, 4):
            for i in range(1, n + 1):
                x = DenseLayer(self.growth_rate, self.bc, self.drop_rate, bn, self.dtype,
                               name=f"block{b}_layer{i}")(x, train)
            if b < 3:
                # math.floor as densenet.lua: odd map counts lose one under compression.
                maps = int(x.shape[-1] * compression)
                x = BNReLUConv(maps, 1, self.drop_rate, bn, self.dtype, name=f"transition{b}")(x, train)
                x = nn.avg_pool(x, (2, 2), (2, 2))
        x = nn.relu(bn(name="bn")(x, use_running_average=not train))
        x = global_avg_pool(x)
        x = Dense(self.num_classes, kernel_init=torch_linear_init, dtype=self.dtype, name="fc")(x)
        return x.astype(jnp.float32)


def _description(depth: int, k: int, bc: bool) -> str:
    n = layers_per_block(depth, bc)
    kind = f"DenseNet-BC (L={depth}, k={k})" if bc else f"DenseNet (L={depth}, k={k})"
    return f"{kind} for CIFAR (Table 2), 3 blocks of {n} {'bottleneck ' if bc else ''}layers"


for _name, (_depth, _k, _bc) in CONFIGS.items():
    register(_name, functools.partial(DenseNetCifar, _depth, _k, _bc), family="densenet_cifar",
             input_size=32, num_classes=10, description=_description(_depth, _k, _bc))
