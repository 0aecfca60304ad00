"""Local response normalisation across channels (Krizhevsky et al. 2012, Sec. 3.3)."""

import flax.linen as nn
import jax
import jax.numpy as jnp


def lrn(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    """Local response normalisation across channels (NHWC), Caffe/PyTorch form.

    Caffe and PyTorch divide alpha by `size`; the AlexNet paper does not. For the
    paper's formula k + alpha * sum(a^2), pass `alpha * size`.
    """
    sq = jax.lax.reduce_window(
        x * x, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1), ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2))
    )
    return x / (k + alpha / size * sq) ** beta


class LRN(nn.Module):
    """Local response normalisation written as in the AlexNet paper (Sec. 3.3):

        b_i = a_i / (k + alpha * sum_{j in the n maps around i} a_j^2) ** beta

    `layers.lrn` is the Caffe/PyTorch form, which divides alpha by n, so we pass
    alpha * n. (Caffe's alpha=1e-4 is therefore alpha=2e-5 here.) Computed in
    float32: in bfloat16, k + alpha * sum would round to k.
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    def __call__(self, x):
        y = lrn(x.astype(jnp.float32), self.size, self.alpha * self.size, self.beta, self.k)
        return y.astype(x.dtype)

    def count_macs(self, inputs, outputs):
        return 0  # the reference counts convolution and dense multiply-adds only
