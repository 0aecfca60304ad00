"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable
Convolutions"), Fig. 5, as built by `keras.applications.Xception` (299x299 input).

    block      units (separable conv widths)        residual            output
    block1     conv 32 3x3/2, conv 64 3x3 (valid)    -                   147x147x64
    block2     sep 128, sep 128, max-pool 3x3/2      conv 128 1x1/2      74x74x128
    block3     sep 256, sep 256, max-pool 3x3/2      conv 256 1x1/2      37x37x256
    block4     sep 728, sep 728, max-pool 3x3/2      conv 728 1x1/2      19x19x728
    block5-12  sep 728 x3                            identity            19x19x728
    block13    sep 728, sep 1024, max-pool 3x3/2     conv 1024 1x1/2     10x10x1024
    block14    sep 1536, sep 2048                    -                   10x10x2048
    global average pool, dropout 0.5, fc 1000 ("predictions")

A separable conv is a 3x3 depthwise conv (one filter per channel) then a 1x1
pointwise conv, both without bias and with nothing in between (Sec. 3); each is
followed by BatchNorm (epsilon 1e-3, Keras's). In blocks 2-13 every unit is
ReLU -> separable conv -> BN (block 2 starts without the ReLU: block 1 just
applied one), and the block's input, projected where the shape changes, is added
after the pool; block 14's units are separable conv -> BN -> ReLU.
22,855,952 parameters (paper Table 3), 8,357,403,496 MACs.

Padding as in Keras, so its weights give the same logits: block 1's convs are
'valid', separable convs 'same' at stride 1 (symmetric), and the 3x3/2 max-pools
'same' in TF's sense, which pads the end more than the start when the total is
odd (74x74 -> 37x37 pads (0, 1)); XLA's 'SAME' is that same rule, for any input
size. A 1x1/2 'same' conv never pads. Module names mirror Keras's with '/' for
'_' (`block4/sepconv2_bn` is `block4_sepconv2_bn`); Keras leaves the residual
convs unnamed (its `conv2d`, `conv2d_1`, ... in block order), ours are
`blockN/residual` and `blockN/residual_bn`. Dropout 0.5 before the classifier is
the paper's (Sec. 4.3); Keras omits it (no effect at inference).
"""

import functools
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import BatchNorm, Conv, Dense, global_avg_pool, he_normal_fan_out, max_pool
from cnn_jax.models.registry import register

# (separable conv widths, residual projection); middle flow = 8 identical blocks.
ENTRY_FLOW = (((128, 128), True), ((256, 256), True), ((728, 728), True))
MIDDLE_FLOW = (((728, 728, 728), False),) * 8
EXIT_FLOW = (((728, 1024), True),)
EXIT_UNITS = (1536, 2048)
BLOCKS = ENTRY_FLOW + MIDDLE_FLOW + EXIT_FLOW   # block2 .. block13

# He init with the fan-in of one group: a depthwise 3x3 filter sees 9 inputs.
he_normal_fan_in = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class SeparableConv(nn.Module):
    """Depthwise k x k (one filter per channel) then pointwise 1x1 (Keras SeparableConv2D)."""

    features: int
    kernel_size: tuple = (3, 3)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        pad = tuple((k // 2, k // 2) for k in self.kernel_size)
        x = Conv(x.shape[-1], self.kernel_size, padding=pad, feature_group_count=x.shape[-1],
                 use_bias=False, kernel_init=he_normal_fan_in, dtype=self.dtype,
                 name="depthwise")(x)
        return Conv(self.features, (1, 1), padding=((0, 0), (0, 0)), use_bias=False,
                    kernel_init=he_normal_fan_out, dtype=self.dtype, name="pointwise")(x)


class XceptionBlock(nn.Module):
    """Blocks 2-13: [ReLU -> separable conv -> BN] per width, then max-pool + 1x1/2
    projection of the input, or the identity."""

    widths: tuple
    project: bool
    relu_first: bool = True
    bn: Callable = BatchNorm
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        shortcut = x
        if self.project:  # created first, as in Keras
            shortcut = Conv(self.widths[-1], (1, 1), (2, 2), padding=((0, 0), (0, 0)),
                            use_bias=False, kernel_init=he_normal_fan_out, dtype=self.dtype,
                            name="residual")(x)
            shortcut = self.bn(name="residual_bn")(shortcut, use_running_average=not train)
        for i, width in enumerate(self.widths, start=1):
            if i > 1 or self.relu_first:
                x = nn.relu(x)
            x = SeparableConv(width, dtype=self.dtype, name=f"sepconv{i}")(x)
            x = self.bn(name=f"sepconv{i}_bn")(x, use_running_average=not train)
        if self.project:
            x = max_pool(x, (3, 3), (2, 2), "SAME")
        return x + shortcut


class Xception(nn.Module):
    num_classes: int = 1000
    dropout_rate: float = 0.5    # paper Sec. 4.3 (Keras: none)
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = functools.partial(BatchNorm, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                               group_size=self.bn_group_size, dtype=self.dtype)

        x = x.astype(self.dtype)
        for i, (width, stride) in enumerate(((32, 2), (64, 1)), start=1):
            x = Conv(width, (3, 3), (stride, stride), padding=((0, 0), (0, 0)), use_bias=False,
                     kernel_init=he_normal_fan_out, dtype=self.dtype, name=f"block1_conv{i}")(x)
            x = nn.relu(bn(name=f"block1_conv{i}_bn")(x, use_running_average=not train))
        for i, (widths, project) in enumerate(BLOCKS, start=2):
            x = XceptionBlock(widths, project, relu_first=i > 2, bn=bn, dtype=self.dtype,
                              name=f"block{i}")(x, train)
        for i, width in enumerate(EXIT_UNITS, start=1):
            x = SeparableConv(width, dtype=self.dtype, name=f"block14_sepconv{i}")(x)
            x = nn.relu(bn(name=f"block14_sepconv{i}_bn")(x, use_running_average=not train))
        x = global_avg_pool(x)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        x = Dense(self.num_classes, dtype=self.dtype, name="predictions")(x)
        return x.astype(jnp.float32)


register("xception", Xception, family="xception", input_size=299,
         description="Xception (paper Fig. 5 = Keras applications)")
