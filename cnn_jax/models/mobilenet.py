"""MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural
Networks for Mobile Vision Applications"), Table 1, as built by
`keras.applications.MobileNet` (224x224 input).

    layer                       output (alpha = 1)
    conv 32 3x3/2               112x112x32
    dw 3x3/1, pw 64             112x112x64
    dw 3x3/2, pw 128            56x56x128
    dw 3x3/1, pw 128            56x56x128
    dw 3x3/2, pw 256            28x28x256
    dw 3x3/1, pw 256            28x28x256
    dw 3x3/2, pw 512            14x14x512
    5 x (dw 3x3/1, pw 512)      14x14x512
    dw 3x3/2, pw 1024           7x7x1024
    dw 3x3/1, pw 1024           7x7x1024   (Table 1 prints s2 here: a typo, 7x7 stays 7x7)
    global average pool, dropout, classifier 1x1 conv 1000 with bias

"dw" is a depthwise 3x3 conv (one filter per channel), "pw" a pointwise 1x1;
every conv has no bias and is followed by BatchNorm (epsilon 1e-3) and ReLU6
(Keras; the paper says ReLU). The width multiplier `alpha` (Sec. 3.2) scales
every width as int(width * alpha); the classifier keeps its 1000 outputs.
alpha=1: 4,231,976 parameters, 568,740,352 MACs (paper: 4.2M, 569M).

Padding as in Keras, so its weights give the same logits: the first conv is
'same' at stride 2, which in TF's rule pads the end more than the start
((0, 1) at 224; XLA's 'SAME' is that same rule, for any input size); the
stride-2 depthwise convs pad ((0, 1), (0, 1)) explicitly then run 'valid'
(Keras's ZeroPadding2D `conv_pad_N`), the stride-1 ones pad 1 all round.
Module names are Keras's layer names (`conv1`, `conv1_bn`, `conv_dw_3`,
`conv_dw_3_bn`, `conv_pw_3`, `conv_pw_3_bn`, `conv_preds`). Dropout before the
classifier: Keras's 1e-3 (the paper states none).
"""

import functools
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import BatchNorm, Conv, he_normal_fan_out
from cnn_jax.models.registry import register

STEM_WIDTH = 32
# (pointwise width, depthwise stride) of depthwise-separable layers 1..13
LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
          (1024, 2), (1024, 1))

# A depthwise 3x3 filter sees 9 inputs: He init with the fan-in of one group.
he_normal_fan_in = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def conv_bn_relu6(bn: Callable, name: str, x, train: bool, features: int, strides: int,
                  kernel: int, padding, groups: int = 1, dtype=jnp.float32):
    """conv (no bias) -> BN -> ReLU6, named like Keras (`name`, `name`_bn)."""
    x = Conv(features, (kernel, kernel), (strides, strides), padding=padding,
             feature_group_count=groups, use_bias=False,
             kernel_init=he_normal_fan_in if groups > 1 else he_normal_fan_out,
             dtype=dtype, name=name)(x)
    return nn.relu6(bn(name=f"{name}_bn")(x, use_running_average=not train))


class MobileNetV1(nn.Module):
    num_classes: int = 1000
    alpha: float = 1.0           # width multiplier
    dropout_rate: float = 1e-3   # Keras
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3
    bn_group_size: int = 0            # ghost BN: statistics over groups of this many examples (0 = all)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = functools.partial(BatchNorm, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                               group_size=self.bn_group_size, dtype=self.dtype)
        unit = functools.partial(conv_bn_relu6, bn, train=train, dtype=self.dtype)
        x = unit("conv1", x.astype(self.dtype), features=int(STEM_WIDTH * self.alpha),
                 strides=2, kernel=3, padding="SAME")
        for i, (width, stride) in enumerate(LAYERS, start=1):
            pad = ((0, 1), (0, 1)) if stride == 2 else ((1, 1), (1, 1))
            x = unit(f"conv_dw_{i}", x, features=x.shape[-1], strides=stride, kernel=3,
                     padding=pad, groups=x.shape[-1])
            x = unit(f"conv_pw_{i}", x, features=int(width * self.alpha), strides=1, kernel=1,
                     padding=((0, 0), (0, 0)))
        x = jnp.mean(x, axis=(1, 2), keepdims=True)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        x = Conv(self.num_classes, (1, 1), dtype=self.dtype, name="conv_preds")(x)
        return x.reshape(x.shape[0], self.num_classes).astype(jnp.float32)


register("mobilenet_v1", MobileNetV1, family="mobilenet", input_size=224,
         description="MobileNet v1 1.0-224 (Keras layout: ReLU6, 1x1 conv classifier)")
