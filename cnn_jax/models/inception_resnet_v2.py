"""Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke & Alemi 2017, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning"), in the
layout of `keras.applications.InceptionResNetV2` (a port of TF-slim's; 299x299
input, no auxiliary head).

    name (Keras)      module                                       output
    stem              Inception-v3's stem (see inception_v3)       35x35x192
    mixed_5b          branches 96 | 48-64 | 64-96-96 | pool-64     35x35x320
    block35_1..10     Inception-ResNet-A, residual scale 0.17      35x35x320
    mixed_6a          Reduction-A (k=256 l=256 m=384 n=384)        17x17x1088
    block17_1..20     Inception-ResNet-B, residual scale 0.1       17x17x1088
    mixed_7a          Reduction-B                                  8x8x2080
    block8_1..10      Inception-ResNet-C, residual scale 0.2;      8x8x2080
                      the last one unscaled (1.0) and without ReLU
    conv_7b           conv 1536 1x1                                8x8x1536
    global average pool, dropout, fc 1000 ("predictions")

This is TF-slim's network (10/20/10 residual blocks after a 320-map
mixed_5b), not the paper's schema (Fig. 15: 5/10/5 blocks after its own stem
with 384 maps at 35x35, other block widths). Every conv unit is
conv (no bias) -> BatchNorm without gamma (Keras `scale=False`, epsilon 1e-3) ->
ReLU. A residual block is `x + scale * conv1x1(concat(branches))` then ReLU,
where the 1x1 "up-projection" (Keras `blockN_i_conv`) restores the input width
and has a bias and no BN. 55,813,192 parameters, 13,155,794,016 MACs
(`bn_scale=True` adds a gamma per BN channel).

Padding and pooling as in Keras, so its weights give the same logits: 'same'
only at stride 1 (symmetric), strided convs and max-pools 'valid', the 3x3/1
average pool of mixed_5b excludes the padding from its mean. Module names are
Keras's where it names layers (`mixed_5b`, `block17_3/conv` = `block17_3_conv`,
`conv_7b`, `predictions`); within a block the branch convs are created in
Keras's order (`branch_1_2` is the second conv of branch 1). Dropout before the
classifier: keep probability 0.8, as in the paper's schema and TF-slim.
"""

import functools
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import Conv, ConvBN, Dense, global_avg_pool, he_normal_fan_out
from cnn_jax.models.inception_v3 import AVG, MAX, STEM, Mixed, Stem, conv
from cnn_jax.models.registry import register

MIXED_5B = (("branch_0", (conv(96, 1),)),
            ("branch_1", (conv(48, 1), conv(64, 5))),
            ("branch_2", (conv(64, 1), conv(96, 3), conv(96, 3))),
            ("branch_pool", (AVG, conv(64, 1))))

BLOCK35 = (("branch_0", (conv(32, 1),)),
           ("branch_1", (conv(32, 1), conv(32, 3))),
           ("branch_2", (conv(32, 1), conv(48, 3), conv(64, 3))))

MIXED_6A = (("branch_0", (conv(384, 3, 2, "valid"),)),
            ("branch_1", (conv(256, 1), conv(256, 3), conv(384, 3, 2, "valid"))),
            ("branch_pool", (MAX,)))

BLOCK17 = (("branch_0", (conv(192, 1),)),
           ("branch_1", (conv(128, 1), conv(160, (1, 7)), conv(192, (7, 1)))))

MIXED_7A = (("branch_0", (conv(256, 1), conv(384, 3, 2, "valid"))),
            ("branch_1", (conv(256, 1), conv(288, 3, 2, "valid"))),
            ("branch_2", (conv(256, 1), conv(288, 3), conv(320, 3, 2, "valid"))),
            ("branch_pool", (MAX,)))

BLOCK8 = (("branch_0", (conv(192, 1),)),
          ("branch_1", (conv(192, 1), conv(224, (1, 3)), conv(256, (3, 1)))))

# (name, branches, repeats, residual scale); repeats None = a plain Mixed module.
LAYOUT = (("mixed_5b", MIXED_5B, None, None),
          ("block35", BLOCK35, 10, 0.17),
          ("mixed_6a", MIXED_6A, None, None),
          ("block17", BLOCK17, 20, 0.1),
          ("mixed_7a", MIXED_7A, None, None),
          ("block8", BLOCK8, 10, 0.2))


class InceptionResNetBlock(nn.Module):
    """x + scale * up(concat(branches)), then ReLU (Keras `inception_resnet_block`)."""

    branches: tuple
    scale: float
    activate: bool = True
    conv: Callable = ConvBN
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        mixed = Mixed(self.branches, self.conv, name="mixed")(x, train)
        # The up-projection has a bias and no BN (Keras conv2d_bn with use_bias=True).
        up = Conv(x.shape[-1], (1, 1), padding=((0, 0), (0, 0)), use_bias=True,
                  kernel_init=he_normal_fan_out, dtype=self.dtype, name="conv")(mixed)
        x = x + self.scale * up
        return nn.relu(x) if self.activate else x


class InceptionResNetV2(nn.Module):
    num_classes: int = 1000
    dropout_rate: float = 0.2    # keep probability 0.8
    bn_scale: bool = False       # Keras: BN without gamma
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(ConvBN, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
                                 bn_scale=self.bn_scale, bn_group_size=self.bn_group_size, dtype=self.dtype)
        x = Stem(STEM, conv, name="stem")(x.astype(self.dtype), train)
        for name, branches, repeats, scale in LAYOUT:
            if repeats is None:
                x = Mixed(branches, conv, name=name)(x, train)
                continue
            for i in range(1, repeats + 1):
                last = name == "block8" and i == repeats  # Keras: scale 1.0, no activation
                x = InceptionResNetBlock(branches, 1.0 if last else scale, not last, conv,
                                         self.dtype, name=f"{name}_{i}")(x, train)
        x = conv(1536, (1, 1), name="conv_7b")(x, train)
        x = global_avg_pool(x)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        x = Dense(self.num_classes, dtype=self.dtype, name="predictions")(x)
        return x.astype(jnp.float32)


register("inception_resnet_v2", InceptionResNetV2, family="inception_resnet", input_size=299,
         description="Inception-ResNet-v2 (Keras/TF-slim layout), BN without gamma")
