"""GoogLeNet (Szegedy et al. 2015, "Going Deeper with Convolutions"), Table 1 and Fig. 3.

    type            patch/stride  output     #1x1 #3x3red #3x3 #5x5red #5x5 pool proj
    convolution     7x7/2         112x112x64
    max pool        3x3/2         56x56x64
    convolution     3x3/1         56x56x192       64      192          (1x1 reduce first)
    max pool        3x3/2         28x28x192
    inception (3a)                28x28x256   64   96     128   16     32   32
    inception (3b)                28x28x480  128  128     192   32     96   64
    max pool        3x3/2         14x14x480
    inception (4a)                14x14x512  192   96     208   16     48   64
    inception (4b)                14x14x512  160  112     224   24     64   64
    inception (4c)                14x14x512  128  128     256   24     64   64
    inception (4d)                14x14x528  112  144     288   32     64   64
    inception (4e)                14x14x832  256  160     320   32    128  128
    max pool        3x3/2         7x7x832
    inception (5a)                7x7x832    256  160     320   32    128  128
    inception (5b)                7x7x1024   384  192     384   48    128  128
    avg pool        7x7/1         1x1x1024
    dropout (40%), linear 1000, softmax

Faithful to the paper, unlike torchvision's port: true 5x5 convolutions in
the 5x5 branch, conv biases and no BatchNorm, local response normalisation
after the stem's first max-pool and after its 3x3 conv (Fig. 3), and max-pools
in Caffe's ceil mode. Every convolution, reductions and projections included,
is followed by a ReLU. 6,998,552 parameters, 1,582,671,872 MACs at 224.

Auxiliary classifiers (Sec. 5) on the outputs of 4a and 4d: 5x5/3 average
pool (4x4x512 or 4x4x528), 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7,
linear classifier. They exist only in training: `apply(..., train=True)`
returns `(logits, aux1, aux2)` and their parameters are created only by an
`init(..., train=True)` (13,378,280 parameters then; the inference count
above leaves them out). Their losses are weighted by AUX_LOSS_WEIGHT in the
training step, not here. `aux_logits=False` drops them altogether.

Discrepancies with the paper's Table 1: the conv1 row prints 2.7K parameters
and 34M ops, but a 7x7x3x64 convolution has 9,408 weights and costs 118.0M
MACs at 112x112 (the other rows agree with a recomputation in K = 1024 units,
e.g. 3a: 163,328 weights = 159K, 128M MACs). The paper's "1.5 billion
multiply-adds" compares with our 1.583 G.

Not in the paper, taken from Caffe's bvlc_googlenet replication: LRN
constants (n=5, Caffe alpha=1e-4 i.e. 2e-5 in the paper form, beta=0.75,
k=1) and the init (Caffe "xavier": uniform with variance 1/fan_in; biases 0.2,
classifiers 0). The final 7x7 average pool is global, so inputs other than
224 work at inference; the auxiliary heads need the 4a map to be at least
5x5 (inputs >= 80).

`googlenet_tv` is torchvision's `googlenet`, the same blocks with a different
`Variant` (so that torchvision's weights load, see analysis/torch_maps.py): every
conv is conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, no LRN, the "5x5" branch is
a 3x3 conv (a known torchvision bug, vision#906, kept by its published weights), the
pool before 5a is 2x2/2 (ceil mode) instead of 3x3/2, dropout 0.2, and the aux heads
pool with torch's adaptive average pool to 4x4 (on a 14x14 map: windows of 4 starting
at 0, 3, 7 and 10) before conv 128 (+BN), FC 1024 over the flattened 4x4x128 map,
dropout 0.7 and FC. 6,624,904 parameters without the aux heads, 13,004,888 with them (torchvision's
counts), 1,498,376,192 MACs at 224. Init: torchvision's normal(0.01) kernels.
torchvision's `transform_input=True` (set with its published weights) rescales
ImageNet-normalised inputs to (x - 0.5) / 0.5 per RGB channel, i.e. [-1, 1]; ours has
no such step, so give it [-1, 1] inputs for those weights (`cnn-jax eval --weights`
does) and ImageNet-normalised ones for weights trained with `transform_input=False`.
"""

import dataclasses
import functools

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.errors import UserError
from cnn_jax.layers import LRN, Conv, ConvBN, Dense, adaptive_avg_pool, global_avg_pool, max_pool, max_pool_ceil
from cnn_jax.models.registry import register

AUX_LOSS_WEIGHT = 0.3  # Sec. 5: each auxiliary loss is added with weight 0.3 during training

INCEPTION = {  # #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (Table 1)
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
LAYOUT = ("3a", "3b", "pool3", "4a", "4b", "4c", "4d", "4e", "pool4", "5a", "5b")
AUX_AFTER = ("4a", "4d")

_XAVIER = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")  # Caffe's "xavier" filler
_BIAS = nn.initializers.constant(0.2)
# torchvision's init_weights: trunc_normal_(std=0.01, a=-2, b=2), whose bounds are +-200 std.
_TV_INIT = nn.initializers.normal(0.01)


@dataclasses.dataclass(frozen=True)
class Variant:
    """What distinguishes two GoogLeNets built from the same blocks."""

    batch_norm: bool    # conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; else conv + bias -> ReLU
    wide_kernel: int    # the kernel of the "5x5" branch
    lrn: bool           # LRN after the first max-pool and after conv2 (Fig. 3)
    pool4_window: int   # the max-pool between 4e and 5a (stride 2, ceil mode)
    aux_pool: str       # "avg5/3": 5x5/3 average pool; "adaptive4": torch's adaptive pool to 4x4
    kernel_init: object = _XAVIER
    bias_init: object = _BIAS
    classifier_init: object = _XAVIER


PAPER = Variant(batch_norm=False, wide_kernel=5, lrn=True, pool4_window=3, aux_pool="avg5/3")
TORCHVISION = Variant(batch_norm=True, wide_kernel=3, lrn=False, pool4_window=2,
                      aux_pool="adaptive4", kernel_init=_TV_INIT,
                      bias_init=nn.initializers.zeros, classifier_init=_TV_INIT)


def _lrn(name: str):
    return LRN(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0, name=name)


def conv_relu(x, features: int, kernel: int, stride: int = 1, *, name: str, dtype,
              variant: Variant = PAPER, train: bool = False, bn_group_size: int = 0):
    """One convolution unit with "same" padding (k // 2), inside a compact method: conv with
    bias then ReLU (the paper), or conv, BatchNorm, ReLU (torchvision's BasicConv2d)."""
    pad = ((kernel // 2, kernel // 2),) * 2
    if variant.batch_norm:
        return ConvBN(features, (kernel, kernel), (stride, stride), pad, bn_epsilon=1e-3,
                      bn_group_size=bn_group_size, kernel_init=variant.kernel_init, dtype=dtype,
                      name=name)(x, train)
    conv = Conv(features, (kernel, kernel), (stride, stride), padding=pad,
                kernel_init=variant.kernel_init, bias_init=variant.bias_init, dtype=dtype,
                name=name)
    return nn.relu(conv(x))


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3/1 max-pool -> 1x1), concatenated."""

    row: tuple  # the Table 1 numbers, see INCEPTION
    dtype: jnp.dtype = jnp.float32
    variant: Variant = PAPER
    bn_group_size: int = 0

    @nn.compact
    def __call__(self, x, train: bool = False):
        n1, r3, n3, r5, n5, proj = self.row
        conv = functools.partial(conv_relu, dtype=self.dtype, variant=self.variant, train=train,
                                 bn_group_size=self.bn_group_size)
        b1 = conv(x, n1, 1, name="1x1")
        b3 = conv(conv(x, r3, 1, name="3x3_reduce"), n3, 3, name="3x3")
        b5 = conv(conv(x, r5, 1, name="5x5_reduce"), n5, self.variant.wide_kernel, name="5x5")
        bp = conv(max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))), proj, 1, name="pool_proj")
        return jnp.concatenate([b1, b3, b5, bp], axis=-1)


class AuxHead(nn.Module):
    """Sec. 5 auxiliary classifier: pool to 4x4, 1x1 conv 128, FC 1024, dropout 0.7, linear."""

    num_classes: int
    dropout_rate: float = 0.7
    dtype: jnp.dtype = jnp.float32
    variant: Variant = PAPER
    bn_group_size: int = 0

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.variant.aux_pool == "adaptive4":
            x = adaptive_avg_pool(x, 4)
        elif min(x.shape[1:3]) < 5:
            raise UserError(f"GoogLeNet's auxiliary heads need a 5x5 map at {self.name}, got "
                            f"{x.shape[1]}x{x.shape[2]}; use inputs of at least 80x80 or "
                            "model_kwargs.aux_logits=False.")
        else:
            x = nn.avg_pool(x, (5, 5), (3, 3))
        x = conv_relu(x, 128, 1, name="conv", dtype=self.dtype, variant=self.variant, train=train,
                      bn_group_size=self.bn_group_size)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(Dense(1024, kernel_init=self.variant.kernel_init,
                          bias_init=self.variant.bias_init, dtype=self.dtype, name="fc")(x))
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        return Dense(self.num_classes, kernel_init=self.variant.classifier_init,
                     dtype=self.dtype, name="classifier")(x)


class GoogLeNet(nn.Module):
    num_classes: int = 1000
    aux_logits: bool = True       # build and return the two auxiliary heads in training
    dropout_rate: float = 0.4
    aux_dropout_rate: float = 0.7
    dtype: jnp.dtype = jnp.float32
    variant: Variant = PAPER
    bn_group_size: int = 0        # ghost BN (cnn_jax/layers/batchnorm.py), for the BatchNorm variant

    @nn.compact
    def __call__(self, x, train: bool = False):
        v, group = self.variant, self.bn_group_size
        conv = functools.partial(conv_relu, dtype=self.dtype, variant=v, train=train,
                                 bn_group_size=group)

        def norm(y, name):
            return _lrn(name)(y) if v.lrn else y

        x = conv(x.astype(self.dtype), 64, 7, 2, name="conv1")
        x = norm(max_pool_ceil(x, 3, 2), "norm1")
        x = conv(x, 64, 1, name="conv2_reduce")
        x = conv(x, 192, 3, name="conv2")
        x = max_pool_ceil(norm(x, "norm2"), 3, 2)
        pools = {"pool3": 3, "pool4": v.pool4_window}
        aux = []
        for name in LAYOUT:
            if name in pools:
                x = max_pool_ceil(x, pools[name], 2)
                continue
            x = Inception(INCEPTION[name], self.dtype, v, group, name=f"inception_{name}")(x, train)
            if train and self.aux_logits and name in AUX_AFTER:
                head = AuxHead(self.num_classes, self.aux_dropout_rate, self.dtype, v, group,
                               name=f"aux{len(aux) + 1}")
                aux.append(head(x, train).astype(jnp.float32))
        x = global_avg_pool(x)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
        logits = Dense(self.num_classes, kernel_init=v.classifier_init, dtype=self.dtype,
                       name="classifier")(x).astype(jnp.float32)
        return (logits, *aux) if aux else logits


register("googlenet", GoogLeNet, family="googlenet", input_size=224,
         description="GoogLeNet (paper Table 1): true 5x5 branches, biases, LRN, two aux heads")
register("googlenet_tv", functools.partial(GoogLeNet, variant=TORCHVISION, dropout_rate=0.2),
         family="googlenet", input_size=224,
         description="GoogLeNet as torchvision builds it: BN, 3x3 in the '5x5' branch, no LRN")
