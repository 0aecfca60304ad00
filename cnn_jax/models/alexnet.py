"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), its one-tower variant (Krizhevsky 2014,
"One weird trick", as built by torchvision) and ZFNet (Zeiler & Fergus 2014, Fig. 3).

All three are a stack of conv rows followed by fully-connected rows; each net
below is only its table. Every conv is followed by a ReLU, then by the row's
`after` operations in order.

alexnet (paper Fig. 2, 227x227 input; the paper's "224" does not give 55x55):

    conv  maps  kernel/stride  pad  groups  after         output
    1     96    11x11/4        0    1       LRN, pool     27x27
    2     256   5x5/1          2    2       LRN, pool     13x13
    3     384   3x3/1          1    1                     13x13
    4     384   3x3/1          1    2                     13x13
    5     256   3x3/1          1    2       pool          6x6
    FC6 4096, FC7 4096 (dropout 0.5 on their outputs), FC8 1000.
    60,965,224 parameters, 724,406,816 MACs.

The two GPU towers are grouped convolutions (conv2/4/5 see only the maps of
their own tower); conv3 and the FC layers connect across towers, so they are
dense. LRN: k=2, n=5, alpha=1e-4, beta=0.75 (Sec. 3.3), after the ReLU of
conv1 and conv2; overlapping 3x3/2 max-pooling (Sec. 3.4). Init (Sec. 5):
weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden FC layers.

alexnet_owt (torchvision's `alexnet`, 224x224 input): maps 64-192-384-256-256,
kernels 11/4 pad 2, 5 pad 2, 3, 3, 3, no groups, no LRN, pools after conv1,
conv2 and conv5, adaptive average pooling to 6x6 (the identity at 224),
dropout 0.5 on the *inputs* of FC6 and FC7. 61,100,840 parameters.

zfnet (Fig. 3, 224x224 input): conv1 96 7x7/2, conv2 256 5x5/2, then
AlexNet's conv3-5 without towers. The paper gives only map sizes
(110-55-26-13-13-13-6); conv1 pad 1, conv2 pad 0 and ceil-mode 3x3/2 pools
reproduce them (the reference's reconstruction: 62,357,608 parameters,
1,168,032,896 MACs). Per the Fig. 3 caption, layers 1 and 2 are ReLU, pool,
then "contrast normalized across feature maps"; the paper gives no
normalisation constants, so AlexNet's are used. Its filter renormalisation
(RMS radius 0.1) is a training-step rule, not part of the model.

Feature maps are flattened in NHWC order (h, w, c); importing torch weights
for FC6 needs its rows permuted from (c, h, w).
"""

import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from cnn_jax.layers import LRN, Conv, Dense, adaptive_avg_pool, max_pool, max_pool_ceil
from cnn_jax.models.registry import register


class ConvRow(NamedTuple):
    features: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1        # 2 = the paper's two GPU towers
    bias: float = 0.0      # initial bias; AlexNet uses 1 so that early ReLUs are active
    after: tuple = ()      # applied after the ReLU, in order: "lrn", "pool"


class AlexNet(nn.Module):
    """Conv rows, optional adaptive pooling, hidden FC rows with dropout, classifier."""

    convs: tuple                       # ConvRow per conv layer
    fc_features: tuple = (4096, 4096)  # hidden FC layers (FC6, FC7)
    fc_bias: float = 0.0               # initial bias of the hidden FC layers
    num_classes: int = 1000
    dropout_rate: float = 0.5
    dropout_on_inputs: bool = False    # torchvision drops FC6/FC7 inputs; the paper their outputs
    ceil_pool: bool = False            # Caffe/torch ceil_mode for the 3x3/2 max-pools
    pooled_size: int | None = None     # adaptive average pooling to this size before FC6
    lrn: tuple = (5, 1e-4, 0.75, 2.0)  # paper form: n, alpha, beta, k
    kernel_init: Callable = nn.initializers.normal(0.01)
    dtype: jnp.dtype = jnp.float32

    def _after(self, op: str, x, i: int):
        if op == "lrn":
            return LRN(*self.lrn, name=f"lrn{i}")(x)
        if op == "pool":
            return max_pool_ceil(x, 3, 2) if self.ceil_pool else max_pool(x, (3, 3), (2, 2))
        raise ValueError(f"unknown operation {op!r} after conv{i}")

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        for i, row in enumerate(self.convs, start=1):
            x = Conv(row.features, (row.kernel, row.kernel), (row.stride, row.stride),
                     padding=((row.pad, row.pad), (row.pad, row.pad)),
                     feature_group_count=row.groups, kernel_init=self.kernel_init,
                     bias_init=nn.initializers.constant(row.bias), dtype=self.dtype,
                     name=f"conv{i}")(x)
            x = nn.relu(x)
            for op in row.after:
                x = self._after(op, x, i)
        if self.pooled_size is not None:
            x = adaptive_avg_pool(x, self.pooled_size)
        x = x.reshape(x.shape[0], -1)
        drop = lambda y: nn.Dropout(self.dropout_rate)(y, deterministic=not train)
        first_fc = len(self.convs) + 1
        for j, width in enumerate(self.fc_features, start=first_fc):
            x = drop(x) if self.dropout_on_inputs else x
            x = nn.relu(Dense(width, kernel_init=self.kernel_init,
                              bias_init=nn.initializers.constant(self.fc_bias),
                              dtype=self.dtype, name=f"fc{j}")(x))
            x = x if self.dropout_on_inputs else drop(x)
        x = Dense(self.num_classes, kernel_init=self.kernel_init, dtype=self.dtype,
                  name=f"fc{first_fc + len(self.fc_features)}")(x)
        return x.astype(jnp.float32)


ALEXNET = dict(
    convs=(
        ConvRow(96, 11, 4, 0, after=("lrn", "pool")),
        ConvRow(256, 5, 1, 2, groups=2, bias=1.0, after=("lrn", "pool")),
        ConvRow(384, 3, 1, 1),
        ConvRow(384, 3, 1, 1, groups=2, bias=1.0),
        ConvRow(256, 3, 1, 1, groups=2, bias=1.0, after=("pool",)),
    ),
    fc_bias=1.0,
)

# torch's default init, uniform(+-1/sqrt(fan_in)); torch also draws biases that way, we use 0.
_TORCH_DEFAULT_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

ALEXNET_OWT = dict(
    convs=(
        ConvRow(64, 11, 4, 2, after=("pool",)),
        ConvRow(192, 5, 1, 2, after=("pool",)),
        ConvRow(384, 3, 1, 1),
        ConvRow(256, 3, 1, 1),
        ConvRow(256, 3, 1, 1, after=("pool",)),
    ),
    pooled_size=6,
    dropout_on_inputs=True,
    kernel_init=_TORCH_DEFAULT_INIT,
)

ZFNET = dict(
    convs=(
        ConvRow(96, 7, 2, 1, after=("pool", "lrn")),
        ConvRow(256, 5, 2, 0, after=("pool", "lrn")),
        ConvRow(384, 3, 1, 1),
        ConvRow(384, 3, 1, 1),
        ConvRow(256, 3, 1, 1, after=("pool",)),
    ),
    ceil_pool=True,
)

register("alexnet", functools.partial(AlexNet, **ALEXNET), family="alexnet", input_size=227,
         description="AlexNet (2012 paper): two towers as groups=2 in conv2/4/5, LRN, 227 input")
register("alexnet_owt", functools.partial(AlexNet, **ALEXNET_OWT), family="alexnet",
         input_size=224, description="AlexNet one-tower (torchvision): 64-192-384-256-256, no LRN")
register("zfnet", functools.partial(AlexNet, **ZFNET), family="alexnet", input_size=224,
         description="ZFNet (Zeiler & Fergus Fig. 3): 7x7/2 conv1, 5x5/2 conv2, dense conv3-5")
