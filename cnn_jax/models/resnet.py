"""ResNet (He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition").

ImageNet networks, Table 1 (blocks per stage; stage widths 64, 128, 256, 512):

    depth  block        stages
    18     basic        [2, 2, 2, 2]
    34     basic        [3, 4, 6, 3]
    50     bottleneck   [3, 4, 6, 3]
    101    bottleneck   [3, 4, 23, 3]
    152    bottleneck   [3, 8, 36, 3]

Shortcuts are option B (Sec. 3.3): identity, or a 1x1 projection where the
shape changes. "v1" is the paper's network: a bottleneck downsamples in its
first 1x1 convolution. "v1.5" (torchvision, NVIDIA) downsamples in the 3x3,
which costs 6% more MACs and is about 0.5 points more accurate.

CIFAR-10 networks, Sec. 4.2: depth 6n+2, three stages of n basic blocks with
widths 16, 32, 64 on 32x32 inputs, option A shortcuts (stride-2 subsampling and
zero-padded channels: no extra parameters).
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import ConvBN, Dense, global_avg_pool, max_pool
from cnn_jax.models.registry import register

IMAGENET_DEPTHS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
IMAGENET_WIDTHS = [64, 128, 256, 512]
CIFAR_DEPTHS = [20, 32, 44, 56, 110]
CIFAR_WIDTHS = [16, 32, 64]


def residual_scale_init(zero: bool):
    """Goyal et al. 2017: a block's last BN gamma at 0 starts the block as the identity."""
    return nn.initializers.zeros if zero else nn.initializers.ones


class Shortcut(nn.Module):
    """Identity where shapes match; otherwise option B (1x1 projection) or A (subsample, zero-pad)."""

    features: int
    strides: int
    option: str = "B"
    conv: type = ConvBN

    @nn.compact
    def __call__(self, x, train):
        if self.strides == 1 and x.shape[-1] == self.features:
            return x
        if self.option == "A":
            x = x[:, :: self.strides, :: self.strides, :]
            extra = self.features - x.shape[-1]
            return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
        return self.conv(self.features, (1, 1), (self.strides, self.strides), act=None,
                         name="proj")(x, train)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34 and the CIFAR nets)."""

    width: int
    strides: int = 1
    shortcut: str = "B"
    stride_in_3x3: bool = True   # one place to stride: the first 3x3
    zero_init_residual: bool = False
    conv: type = ConvBN
    expansion = 1

    @nn.compact
    def __call__(self, x, train):
        s = (self.strides, self.strides)
        y = self.conv(self.width, (3, 3), s, name="conv1")(x, train)
        y = self.conv(self.width, (3, 3), act=None, name="conv2",
                      bn_scale_init=residual_scale_init(self.zero_init_residual))(y, train)
        return nn.relu(y + Shortcut(self.width, self.strides, self.shortcut, self.conv,
                                    name="shortcut")(x, train))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) (ResNet-50/101/152)."""

    width: int
    strides: int = 1
    shortcut: str = "B"
    stride_in_3x3: bool = False  # False: v1 (paper), True: v1.5
    zero_init_residual: bool = False
    conv: type = ConvBN
    expansion = 4

    @nn.compact
    def __call__(self, x, train):
        s = (self.strides, self.strides)
        s1, s3 = ((1, 1), s) if self.stride_in_3x3 else (s, (1, 1))
        y = self.conv(self.width, (1, 1), s1, name="conv1")(x, train)
        y = self.conv(self.width, (3, 3), s3, name="conv2")(y, train)
        y = self.conv(self.width * 4, (1, 1), act=None, name="conv3",
                      bn_scale_init=residual_scale_init(self.zero_init_residual))(y, train)
        return nn.relu(y + Shortcut(self.width * 4, self.strides, self.shortcut, self.conv,
                                    name="shortcut")(x, train))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    stages: tuple                  # blocks per stage, e.g. (3, 4, 6, 3)
    widths: tuple                  # first-conv width per stage
    block: str = "bottleneck"
    num_classes: int = 1000
    stem: str = "imagenet"         # "imagenet": 7x7/2 conv + 3x3/2 max-pool; "cifar": one 3x3 conv
    shortcut: str = "B"
    stride_in_3x3: bool = False
    zero_init_residual: bool = False  # Goyal et al. 2017: last BN gamma of each block starts at 0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(ConvBN, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
                                 bn_group_size=self.bn_group_size, dtype=self.dtype)
        x = x.astype(self.dtype)
        if self.stem == "imagenet":
            x = conv(self.widths[0], (7, 7), (2, 2), name="stem")(x, train)
            x = max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        else:
            x = conv(self.widths[0], (3, 3), name="stem")(x, train)
        block_cls = BLOCKS[self.block]
        for i, (n, width) in enumerate(zip(self.stages, self.widths)):
            for j in range(n):
                strides = 2 if (i > 0 and j == 0) else 1
                x = block_cls(width, strides, self.shortcut, self.stride_in_3x3,
                              self.zero_init_residual, conv,
                              name=f"stage{i + 1}_block{j + 1}")(x, train)
        x = global_avg_pool(x)
        x = Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
        return x.astype(jnp.float32)


def imagenet_resnet(depth: int, v1_5: bool = False, **kw) -> ResNet:
    block, stages = IMAGENET_DEPTHS[depth]
    return ResNet(tuple(stages), tuple(IMAGENET_WIDTHS), block, stride_in_3x3=v1_5, **kw)


def cifar_resnet(depth: int, **kw) -> ResNet:
    n = (depth - 2) // 6
    return ResNet((n, n, n), tuple(CIFAR_WIDTHS), "basic", stem="cifar", shortcut="A", **kw)


for _depth in IMAGENET_DEPTHS:
    register(f"resnet{_depth}", functools.partial(imagenet_resnet, _depth), family="resnet",
             input_size=224, description=f"ResNet-{_depth} v1 (paper), option-B shortcuts")
    if IMAGENET_DEPTHS[_depth][0] == "bottleneck":
        register(f"resnet{_depth}_v1_5", functools.partial(imagenet_resnet, _depth, True),
                 family="resnet", input_size=224,
                 description=f"ResNet-{_depth} v1.5 (stride in the 3x3, torchvision)")
for _depth in CIFAR_DEPTHS:
    register(f"resnet{_depth}", functools.partial(cifar_resnet, _depth), family="resnet_cifar",
             input_size=32, num_classes=10,
             description=f"ResNet-{_depth} for CIFAR-10 (paper Sec. 4.2), option-A shortcuts")
