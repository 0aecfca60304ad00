"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied
to document recognition", Sec. II-B and Fig. 2).

    layer  maps  kernel  output   trainable params
    C1     6     5x5     28x28    156
    S2     6     2x2/2   14x14    12     (one coefficient and one bias per map)
    C3     16    5x5     10x10    1,516  (partial connections, Table I)
    S4     16    2x2/2   5x5      32
    C5     120   5x5     1x1      48,120
    F6     84            84       10,164
    OUTPUT 10 Euclidean RBF units with fixed +-1 codes (7x12 bitmaps): 0 trainable
                                  total 60,000

Every layer up to F6 is followed by the scaled tanh f(a) = 1.7159 tanh(2a/3)
(Appendix A). The RBF output y_k = ||x - c_k||^2 is returned as logits -y_k, so
softmax cross-entropy equals the paper's MAP criterion without its "rubbish
class" constant j. `head="softmax"` replaces the RBF layer by a trainable
84->num_classes dense layer (the common modern choice, +850 parameters).

The paper draws the RBF codes as stylised 7x12 ASCII bitmaps without printing
them; ours are drawn by hand in the same format below.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.errors import UserError
from cnn_jax.layers import Conv, Dense, conv_general_dilated
from cnn_jax.models.registry import register

# Table I: which S2 maps (rows) each C3 map (column) sees.
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# 7 wide x 12 tall bitmaps of the digits, '#' = +1, '.' = -1 (the paper's code format).
_DIGIT_BITMAPS = {
    0: ".......|..###..|.#...#.|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|.#...#.|..###..|.......",
    1: ".......|...#...|..##...|.#.#...|...#...|...#...|...#...|...#...|...#...|...#...|.#####.|.......",
    2: ".......|.####..|#....#.|......#|......#|.....#.|....#..|...#...|..#....|.#.....|#######|.......",
    3: ".......|#####..|.....#.|......#|.....#.|..###..|.....#.|......#|......#|.....#.|#####..|.......",
    4: ".......|....#..|...##..|..#.#..|.#..#..|#...#..|#######|....#..|....#..|....#..|....#..|.......",
    5: ".......|#######|#......|#......|#####..|.....#.|......#|......#|......#|.....#.|#####..|.......",
    6: ".......|..####.|.#.....|#......|#......|#.###..|##...#.|#.....#|#.....#|.#...#.|..###..|.......",
    7: ".......|#######|......#|.....#.|....#..|....#..|...#...|...#...|..#....|..#....|..#....|.......",
    8: ".......|..###..|.#...#.|#.....#|.#...#.|..###..|.#...#.|#.....#|#.....#|.#...#.|..###..|.......",
    9: ".......|..###..|.#...#.|#.....#|#.....#|.#...##|..###.#|......#|......#|.....#.|.####..|.......",
}


def rbf_codes() -> np.ndarray:
    """(10, 84) array of +-1: the fixed RBF centres, one 7x12 bitmap per digit."""
    rows = [[1.0 if ch == "#" else -1.0 for ch in _DIGIT_BITMAPS[d].replace("|", "")]
            for d in range(10)]
    return np.asarray(rows, np.float32)


def scaled_tanh(x):
    return 1.7159 * jnp.tanh(2.0 / 3.0 * x)


def paper_uniform_init(key, shape, dtype=jnp.float32):
    """Appendix C: weights uniform in +-2.4/F_i, F_i the fan-in of the unit."""
    limit = 2.4 / math.prod(shape[:-1])
    return jax.random.uniform(key, shape, dtype, -limit, limit)


class TrainableSubsample(nn.Module):
    """S2/S4: the sum of each 2x2 block times a trainable coefficient, plus a trainable bias."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        # Initialised to the 2x2 mean so that the squashing that follows starts unsaturated.
        coef = self.param("coef", nn.initializers.constant(0.25), (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        pooled = nn.avg_pool(x, (2, 2), (2, 2)) * 4.0
        return pooled * coef.astype(self.dtype) + bias.astype(self.dtype)

    def count_macs(self, inputs, outputs):
        return 0  # the reference counts subsampling as connections, not multiply-adds


class PartialConv(nn.Module):
    """C3: a 5x5 convolution in which output map j only sees the input maps of `table[j]`.

    Only the connected weights are parameters (1,500 of them); they are scattered
    into a dense kernel whose other entries are zero.
    """

    table: tuple
    kernel: int = 5
    dtype: jnp.dtype = jnp.float32

    def _index(self, in_maps: int) -> np.ndarray:
        k2 = self.kernel * self.kernel
        dense = np.arange(k2 * in_maps * len(self.table)).reshape(k2, in_maps, len(self.table))
        return np.concatenate([dense[:, list(ins), j].reshape(-1) for j, ins in enumerate(self.table)])

    @nn.compact
    def __call__(self, x):
        in_maps, out_maps, k = x.shape[-1], len(self.table), self.kernel
        index = self._index(in_maps)
        fan_in_per_weight = np.concatenate([np.full(k * k * len(t), k * k * len(t)) for t in self.table])

        def init(key, shape, dtype=jnp.float32):
            limit = 2.4 / jnp.asarray(fan_in_per_weight, dtype)
            return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * limit

        weights = self.param("kernel", init, (index.size,))
        bias = self.param("bias", nn.initializers.zeros, (out_maps,))
        dense = jnp.zeros(k * k * in_maps * out_maps, weights.dtype).at[index].set(weights)
        dense = dense.reshape(k, k, in_maps, out_maps).astype(self.dtype)
        y = conv_general_dilated(x.astype(self.dtype), dense, (1, 1), "VALID",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(self.dtype)

    def count_macs(self, inputs, outputs):
        connections = sum(len(t) for t in self.table) * self.kernel ** 2
        return math.prod(outputs.shape[1:-1]) * connections


class EuclideanRBF(nn.Module):
    """OUTPUT: y_k = sum_j (x_j - c_kj)^2 with fixed codes c; returns -y as logits."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        codes = jnp.asarray(rbf_codes()[: self.num_classes], x.dtype)
        return -jnp.sum((x[:, None, :] - codes[None]) ** 2, axis=-1)

    def count_macs(self, inputs, outputs):
        return inputs.shape[-1] * self.num_classes


class LeNet5(nn.Module):
    num_classes: int = 10
    head: str = "rbf"          # "rbf" (paper) or "softmax"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        if self.head not in ("rbf", "softmax"):
            raise UserError(f"lenet5 head must be 'rbf' or 'softmax', not {self.head!r}.")
        if self.head == "rbf" and self.num_classes > 10:
            raise UserError(f"lenet5's RBF head has codes for 10 digits, not {self.num_classes} "
                            "classes; set model_kwargs.head='softmax'.")

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = dict(padding="VALID", kernel_init=paper_uniform_init, dtype=self.dtype)
        x = scaled_tanh(Conv(6, (5, 5), name="C1", **conv)(x.astype(self.dtype)))
        x = scaled_tanh(TrainableSubsample(self.dtype, name="S2")(x))
        x = scaled_tanh(PartialConv(C3_TABLE, dtype=self.dtype, name="C3")(x))
        x = scaled_tanh(TrainableSubsample(self.dtype, name="S4")(x))
        x = scaled_tanh(Conv(120, (5, 5), name="C5", **conv)(x))
        x = x.reshape(x.shape[0], -1)
        x = scaled_tanh(Dense(84, kernel_init=paper_uniform_init, dtype=self.dtype, name="F6")(x))
        if self.head == "softmax":
            return Dense(self.num_classes, dtype=self.dtype, name="output")(x).astype(jnp.float32)
        return EuclideanRBF(self.num_classes, name="output")(x.astype(jnp.float32))


register("lenet5", LeNet5, family="lenet", input_size=32, in_channels=1, num_classes=10,
         description="LeNet-5 (1998): partial C3, trainable subsampling, scaled tanh, RBF output")
