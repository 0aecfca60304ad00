"""The building blocks the model families are made of. Each layer that has more than one
implementation chooses it through a switch (cnn_jax.layers.switch) set when a model is
traced; the CPU-only implementations live in cnn_jax.cpu."""

from cnn_jax.layers.batchnorm import BatchNorm
from cnn_jax.layers.conv import Conv, ConvBN, conv_general_dilated, he_normal_fan_out, pad_pair, same_pad
from cnn_jax.layers.dense import Dense, dot_general
from cnn_jax.layers.lrn import LRN, lrn
from cnn_jax.layers.pooling import adaptive_avg_pool, global_avg_pool, max_pool, max_pool_ceil

__all__ = [
    "BatchNorm",
    "Conv",
    "ConvBN",
    "Dense",
    "LRN",
    "adaptive_avg_pool",
    "conv_general_dilated",
    "dot_general",
    "global_avg_pool",
    "he_normal_fan_out",
    "lrn",
    "max_pool",
    "max_pool_ceil",
    "pad_pair",
    "same_pad",
]
