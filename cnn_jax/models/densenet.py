"""DenseNet-BC (Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected
Convolutional Networks"), Table 1, ImageNet (224x224 input).

    name          growth k   stem width   dense layers per block
    densenet121   32         64           (6, 12, 24, 16)
    densenet169   32         64           (6, 12, 32, 32)
    densenet201   32         64           (6, 12, 48, 32)
    densenet161   48         96           (6, 12, 36, 24)

    stem         conv 2k 7x7/2 pad 3, BN, ReLU, max-pool 3x3/2 pad 1     56x56
    dense block  n x [BN-ReLU-conv 4k 1x1, BN-ReLU-conv k 3x3], each layer's
                 k new maps concatenated to its input ("bottleneck", B)
    transition   BN-ReLU-conv 1x1 to half the maps ("compression" 0.5, C),
                 avg-pool 2x2/2 (after blocks 1-3)                  28, 14, 7
    head         BN, ReLU, global average pool, fc 1000

No conv has a bias. 7,978,856 / 14,149,480 / 20,013,928 / 28,681,000 parameters;
2.834 / 3.360 / 4.291 / 7.728 GMACs. The counts equal torchvision's and, for
121/169/201, `keras.applications.DenseNet*`'s trainable ones.

Faithful to Keras so that its weights give the same logits: Keras pads the
input by 3 then runs a 'valid' 7x7/2 conv (= symmetric padding 3), and pads by
1 with zeros before the 3x3/2 max-pool; after the ReLU every input is >= 0, so
zero padding and our -inf padding give the same maxima. The 3x3 convs pad 1.
BatchNorm epsilon is Keras's 1.001e-5; DenseNet-161, which Keras does not ship,
keeps torchvision's 1e-5. Module names are Keras's with '/' for '_'
(`conv3_block7/1_conv` is Keras's `conv3_block7_1_conv`, `pool2/bn` is
`pool2_bn`, then `bn` and `predictions`). The paper's ImageNet nets use no dropout.
"""

import functools
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import BatchNorm, Conv, ConvBN, Dense, global_avg_pool, he_normal_fan_out, max_pool
from cnn_jax.models.registry import register

# depth: (growth rate k, stem width, dense layers per block)
CONFIGS = {121: (32, 64, (6, 12, 24, 16)),
           169: (32, 64, (6, 12, 32, 32)),
           201: (32, 64, (6, 12, 48, 32)),
           161: (48, 96, (6, 12, 36, 24))}
BOTTLENECK = 4      # the 1x1 conv of a dense layer has 4k maps
COMPRESSION = 0.5   # a transition keeps half the maps
KERAS_EPSILON, TORCHVISION_EPSILON = 1.001e-5, 1e-5


def bn_relu_conv(bn: Callable, features: int, kernel: int, bn_name: str, conv_name: str, x,
                 train: bool, dtype):
    """BN -> ReLU -> conv (no bias, 'same'), the pre-activation unit of the paper (Sec. 3)."""
    x = nn.relu(bn(name=bn_name)(x, use_running_average=not train))
    pad = ((kernel // 2, kernel // 2),) * 2
    return Conv(features, (kernel, kernel), padding=pad, use_bias=False,
                kernel_init=he_normal_fan_out, dtype=dtype, name=conv_name)(x)


class DenseLayer(nn.Module):
    """BN-ReLU-conv 4k 1x1, BN-ReLU-conv k 3x3; output = concat(input, k new maps)."""

    growth_rate: int
    bn: Callable = BatchNorm
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        y = bn_relu_conv(self.bn, BOTTLENECK * self.growth_rate, 1, "0_bn", "1_conv", x, train,
                         self.dtype)
        y = bn_relu_conv(self.bn, self.growth_rate, 3, "1_bn", "2_conv", y, train, self.dtype)
        return jnp.concatenate([x, y], axis=-1)


class Transition(nn.Module):
    """BN-ReLU-conv 1x1 to int(maps * compression), then 2x2/2 average pooling."""

    bn: Callable = BatchNorm
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = bn_relu_conv(self.bn, int(x.shape[-1] * COMPRESSION), 1, "bn", "conv", x, train,
                         self.dtype)
        return nn.avg_pool(x, (2, 2), (2, 2))


class DenseNet(nn.Module):
    blocks: tuple                 # dense layers per block
    growth_rate: int = 32
    stem_width: int = 64
    num_classes: int = 1000
    bn_momentum: float = 0.9
    bn_epsilon: float = KERAS_EPSILON
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = functools.partial(BatchNorm, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                               group_size=self.bn_group_size, dtype=self.dtype)
        x = ConvBN(self.stem_width, (7, 7), (2, 2), padding=3, bn_momentum=self.bn_momentum,
                   bn_epsilon=self.bn_epsilon, bn_group_size=self.bn_group_size, dtype=self.dtype,
                   name="conv1")(x.astype(self.dtype), train)
        x = max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for b, n in enumerate(self.blocks):
            stage = b + 2  # Keras numbers the blocks conv2..conv5, the transitions pool2..pool4
            for i in range(1, n + 1):
                x = DenseLayer(self.growth_rate, bn, self.dtype, name=f"conv{stage}_block{i}")(
                    x, train)
            if b < len(self.blocks) - 1:
                x = Transition(bn, self.dtype, name=f"pool{stage}")(x, train)
        x = nn.relu(bn(name="bn")(x, use_running_average=not train))
        x = global_avg_pool(x)
        x = Dense(self.num_classes, dtype=self.dtype, name="predictions")(x)
        return x.astype(jnp.float32)


def densenet(depth: int, **kw) -> DenseNet:
    growth, stem, blocks = CONFIGS[depth]
    kw.setdefault("bn_epsilon", TORCHVISION_EPSILON if depth == 161 else KERAS_EPSILON)
    return DenseNet(blocks, growth, stem, **kw)


for _depth, (_k, _, _blocks) in CONFIGS.items():
    register(f"densenet{_depth}", functools.partial(densenet, _depth), family="densenet",
             input_size=224, description=f"DenseNet-BC-{_depth}, k={_k}, blocks {_blocks}")
