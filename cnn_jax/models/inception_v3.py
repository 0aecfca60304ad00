"""Inception-v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016, "Rethinking the
Inception Architecture for Computer Vision"), in the layout of TF-slim, torchvision
and `keras.applications.InceptionV3` (299x299 input). After the first pool,
the stem of the paper's Table 1 (3x3 convs to 80, 192/2 and 288 maps) differs
from the one every released model runs (conv 80 1x1, conv 192 3x3, max-pool).

    name (Keras)   module                      output      torchvision
    stem           conv 32 3x3/2 valid          149x149x32   Conv2d_1a_3x3
                   conv 32 3x3 valid            147x147x32   Conv2d_2a_3x3
                   conv 64 3x3 same             147x147x64   Conv2d_2b_3x3
                   max-pool 3x3/2               73x73x64
                   conv 80 1x1                  73x73x80     Conv2d_3b_1x1
                   conv 192 3x3 valid           71x71x192    Conv2d_4a_3x3
                   max-pool 3x3/2               35x35x192
    mixed0-2       Fig. 5 (pool proj 32,64,64)  35x35x288    Mixed_5b-5d
    mixed3         grid reduction (Fig. 10)     17x17x768    Mixed_6a
    mixed4-7       Fig. 6, n=7 (c7 128,160,160,192)  17x17x768  Mixed_6b-6e
    (aux head on mixed7, training only)
    mixed8         grid reduction               8x8x1280     Mixed_7a
    mixed9-10      Fig. 7 (expanded filter bank)  8x8x2048   Mixed_7b-7c
    global average pool, dropout, fc 1000 ("predictions")

Every conv is conv (no bias) -> BatchNorm (epsilon 1e-3) -> ReLU. The two BN
flavours of the reference numbers: torchvision's BN has a gamma (23,834,568
params, the default `bn_scale=True`); Keras's has `scale=False` (23,817,352 =
torchvision - 17,216 BN channels): `create_model('inception_v3', bn_scale=False)`.
5,713,216,096 MACs.

Faithful to Keras so that its weights give the same logits: 'same' means
symmetric k//2 padding (only stride-1 convs use it), strided convs and max-pools
are 'valid', and the 3x3/1 average pool of the pool branches excludes the padding
from its mean (TF 'SAME'). torchvision's `avg_pool2d(3, 1, 1)` includes it
(PyTorch's default count_include_pad=True), the only functional difference from
torchvision: `pool_count_include_pad=True` computes torchvision's function (the
torchvision importer sets it). Within every block the convs are
created in Keras's order (branches left to right, each from input to output),
so our parameter order is the order of Keras's `conv2d_N`/`batch_normalization_N`
layers; module names are TF-slim/torchvision's (`mixed5/branch7x7dbl_3`).

Auxiliary head ("BN-auxiliary", Sec. 8; torchvision's layout, Keras has none):
avg-pool 5x5/3 -> conv 128 1x1 -> conv 768 5x5 valid -> global pool -> fc,
every conv with BN. It exists only in training (`train=True` returns
`(logits, aux)` and its init creates the head's 3,326,696 parameters: 27,161,264
in all). The paper also batch-normalises the aux fc layer; torchvision and
TF-slim do not, and neither do we. Dropout before the classifier: TF-slim's
keep probability 0.8 (the paper does not state one; torchvision uses 0.5).
"""

import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.errors import UserError
from cnn_jax.layers import ConvBN, Dense, global_avg_pool, max_pool
from cnn_jax.models.registry import register


class Conv(NamedTuple):
    """One conv-BN-ReLU unit; `padding` as Keras spells it ('same' only at stride 1)."""

    features: int
    kernel: tuple
    stride: int = 1
    padding: str = "same"


def conv(features: int, kernel, stride: int = 1, padding: str = "same") -> Conv:
    k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return Conv(features, k, stride, padding)


class Fork(NamedTuple):
    """Parallel convs on the same input, concatenated (Fig. 7's 1x3 and 3x1 pair)."""

    convs: tuple


AVG = "avg_pool"  # 3x3/1 'same' (see avg_pool_3x3)
MAX = "max_pool"  # 3x3/2 'valid': the grid reductions


def block_a(pool_features: int) -> tuple:
    """Fig. 5 (35x35) as released: the paper's 5x5 factorised as two 3x3 (third branch),
    plus a 5x5 branch that the figure does not have (TF-slim, torchvision, Keras)."""
    return (("branch1x1", (conv(64, 1),)),
            ("branch5x5", (conv(48, 1), conv(64, 5))),
            ("branch3x3dbl", (conv(64, 1), conv(96, 3), conv(96, 3))),
            ("branch_pool", (AVG, conv(pool_features, 1))))


def block_c(c7: int) -> tuple:
    """Fig. 6 with n=7 (17x17): 7x7 convs factorised into 1x7 and 7x1."""
    return (("branch1x1", (conv(192, 1),)),
            ("branch7x7", (conv(c7, 1), conv(c7, (1, 7)), conv(192, (7, 1)))),
            ("branch7x7dbl", (conv(c7, 1), conv(c7, (7, 1)), conv(c7, (1, 7)),
                              conv(c7, (7, 1)), conv(192, (1, 7)))),
            ("branch_pool", (AVG, conv(192, 1))))


REDUCTION_35 = (("branch3x3", (conv(384, 3, 2, "valid"),)),
                ("branch3x3dbl", (conv(64, 1), conv(96, 3), conv(96, 3, 2, "valid"))),
                ("branch_pool", (MAX,)))

REDUCTION_17 = (("branch3x3", (conv(192, 1), conv(320, 3, 2, "valid"))),
                ("branch7x7x3", (conv(192, 1), conv(192, (1, 7)), conv(192, (7, 1)),
                                 conv(192, 3, 2, "valid"))),
                ("branch_pool", (MAX,)))

SPLIT_3x3 = Fork((conv(384, (1, 3)), conv(384, (3, 1))))
BLOCK_E = (("branch1x1", (conv(320, 1),)),
           ("branch3x3", (conv(384, 1), SPLIT_3x3)),
           ("branch3x3dbl", (conv(448, 1), conv(384, 3), SPLIT_3x3)),
           ("branch_pool", (AVG, conv(192, 1))))

# (name, op); a stem shared with Inception-ResNet-v2.
STEM = (("Conv2d_1a_3x3", conv(32, 3, 2, "valid")),
        ("Conv2d_2a_3x3", conv(32, 3, 1, "valid")),
        ("Conv2d_2b_3x3", conv(64, 3)),
        ("MaxPool_3a_3x3", MAX),
        ("Conv2d_3b_1x1", conv(80, 1, 1, "valid")),
        ("Conv2d_4a_3x3", conv(192, 3, 1, "valid")),
        ("MaxPool_5a_3x3", MAX))

BLOCKS = (("mixed0", block_a(32)), ("mixed1", block_a(64)), ("mixed2", block_a(64)),
          ("mixed3", REDUCTION_35),
          ("mixed4", block_c(128)), ("mixed5", block_c(160)), ("mixed6", block_c(160)),
          ("mixed7", block_c(192)),
          ("mixed8", REDUCTION_17), ("mixed9", BLOCK_E), ("mixed10", BLOCK_E))
AUX_AFTER = "mixed7"


def branch_names(branch: str, ops: tuple) -> list:
    """TF-slim/torchvision names: `branch7x7_2`, a fork's `branch3x3_2a`/`_2b`, and the
    bare branch name when the branch has a single conv."""
    positions = [op for op in ops if not isinstance(op, str)]
    names, i = [], 0
    for op in ops:
        if isinstance(op, str):
            names.append(None)
            continue
        i += 1
        base = branch if len(positions) == 1 else f"{branch}_{i}"
        names.append(tuple(f"{base}{s}" for s in "ab"[:len(op.convs)]) if isinstance(op, Fork)
                     else base)
    return names


def apply_conv(conv_unit: Callable, op: Conv, name: str, x, train: bool):
    if op.padding == "same":
        assert op.stride == 1, "Keras 'same' at stride 2 pads asymmetrically; not used here"
        pad = None  # symmetric k//2
    else:
        pad = 0
    return conv_unit(op.features, op.kernel, (op.stride, op.stride), pad, name=name)(x, train)


def avg_pool_3x3(x, count_include_pad: bool = False):
    """3x3/1 average pool over one pixel of zero padding: at the borders the mean of the
    valid taps only (Keras, TF-slim), or the sum over 9 (PyTorch's default)."""
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=count_include_pad)


def apply_op(conv_unit: Callable, op, name, x, train: bool, count_include_pad: bool = False):
    if op == AVG:
        return avg_pool_3x3(x, count_include_pad)
    if op == MAX:
        return max_pool(x, (3, 3), (2, 2))
    if isinstance(op, Fork):
        return jnp.concatenate([apply_conv(conv_unit, c, n, x, train)
                                for c, n in zip(op.convs, name)], axis=-1)
    return apply_conv(conv_unit, op, name, x, train)


class Mixed(nn.Module):
    """Parallel branches concatenated along channels: every module of the table."""

    branches: tuple   # ((name, ops), ...), in Keras's creation order
    conv: Callable = ConvBN
    pool_count_include_pad: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        outputs = []
        for branch, ops in self.branches:
            y = x
            for op, name in zip(ops, branch_names(branch, ops)):
                y = apply_op(self.conv, op, name, y, train, self.pool_count_include_pad)
            outputs.append(y)
        return jnp.concatenate(outputs, axis=-1)


class Stem(nn.Module):
    """A plain sequence of (name, op) layers."""

    layers: tuple = STEM
    conv: Callable = ConvBN

    @nn.compact
    def __call__(self, x, train: bool = False):
        for name, op in self.layers:
            x = apply_op(self.conv, op, name, x, train)
        return x


class AuxHead(nn.Module):
    """The 17x17 auxiliary classifier (torchvision `InceptionAux`, TF-slim `AuxLogits`)."""

    num_classes: int
    conv: Callable = ConvBN
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        if min(x.shape[1:3]) < 17:  # avg-pool 5x5/3 must leave 5x5 for the 5x5 'valid' conv
            raise UserError(f"Inception-v3's auxiliary head needs a 17x17 map at mixed7, got "
                            f"{x.shape[1]}x{x.shape[2]}: use inputs of at least 299x299 or "
                            "set model_kwargs.aux_logits=False.")
        x = nn.avg_pool(x, (5, 5), (3, 3))
        x = self.conv(128, (1, 1), name="conv0")(x, train)
        # TF-slim's small inits for the head (stddev 0.01 conv, 0.001 fc), as torchvision.
        x = self.conv(768, (5, 5), padding=0, kernel_init=nn.initializers.truncated_normal(0.01),
                      name="conv1")(x, train)
        x = global_avg_pool(x)
        return Dense(self.num_classes, kernel_init=nn.initializers.truncated_normal(0.001),
                     dtype=self.dtype, name="fc")(x)


class InceptionV3(nn.Module):
    num_classes: int = 1000
    aux_logits: bool = True      # compute the aux head in training
    dropout_rate: float = 0.2    # TF-slim keep_prob 0.8
    bn_scale: bool = True        # False: Keras's BN (no gamma)
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    pool_count_include_pad: bool = False  # True: torchvision's average pools (see above)
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(ConvBN, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
                                 bn_scale=self.bn_scale, bn_group_size=self.bn_group_size, dtype=self.dtype)
        x = Stem(STEM, conv, name="stem")(x.astype(self.dtype), train)
        aux = None
        for name, branches in BLOCKS:
            x = Mixed(branches, conv, self.pool_count_include_pad, name=name)(x, train)
            if name == AUX_AFTER and train and self.aux_logits:
                aux = AuxHead(self.num_classes, conv, self.dtype, name="aux")(x, train)
        x = global_avg_pool(x)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        x = Dense(self.num_classes, dtype=self.dtype, name="predictions")(x)
        if aux is not None:
            return x.astype(jnp.float32), aux.astype(jnp.float32)
        return x.astype(jnp.float32)


register("inception_v3", InceptionV3, family="inception", input_size=299,
         description="Inception-v3 (TF-slim/Keras layout), BN-auxiliary head in training")
