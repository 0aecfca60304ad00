"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on whole training batches, in TF.

Where: in the tf.data training pipeline, on each process's slice of a global batch
after batching, not in the jitted train step. The pipeline already owns the example
order and every seed, the step stays one function of (state, batch), and the mixing
costs host CPU instead of a cross-device permutation of the batch.

Pairing: the example at global position 2k is mixed with the one at 2k+1 and vice
versa. The epoch is a seeded shuffle, so neighbours form a random pairing (a perfect
matching, like timm's mixing of a batch with its reverse), and as long as each process's
slice of the global batch has an even size no pair straddles two processes: any process
or device count trains on the same mixed batches.

Both papers' code draws one lambda (and one CutMix box) per batch; here per global batch,
from a seed of (epoch seed, batch number), so every process draws the same one.

The pipeline mixes normalised images. Every normalisation is a per-pixel affine map,
which commutes with convex combinations (Mixup) and with pasting (CutMix), so this
equals mixing the raw pixels.
"""

import dataclasses

import tensorflow as tf

from cnn_jax.data.augment import split_seed
from cnn_jax.errors import UserError


def partner(x) -> tf.Tensor:
    """Each example's pair partner along the batch axis: 0<->1, 2<->3, ..."""
    return tf.gather(x, tf.bitwise.bitwise_xor(tf.range(tf.shape(x)[0]), 1))


def mix_targets(targets, lam) -> tf.Tensor:
    return lam * targets + (1.0 - lam) * partner(targets)


def mixup(images, targets, lam) -> tuple:
    """lam * x + (1 - lam) * x_partner, and the same for the one-hot targets."""
    return lam * images + (1.0 - lam) * partner(images), mix_targets(targets, lam)


def cutmix_box(lam, center, height, width) -> tf.Tensor:
    """The CutMix reference's box: sides int(side * sqrt(1 - lam)), halved with floor on
    each side of `center` = (cy, cx), clipped to the image. int32 [y0, x0, y1, x1], ends
    exclusive."""
    ratio = tf.sqrt(1.0 - tf.cast(lam, tf.float32))
    half_h = tf.cast(tf.floor(tf.cast(height, tf.float32) * ratio), tf.int32) // 2
    half_w = tf.cast(tf.floor(tf.cast(width, tf.float32) * ratio), tf.int32) // 2
    cy, cx = tf.cast(center[0], tf.int32), tf.cast(center[1], tf.int32)
    return tf.stack(
        [
            tf.clip_by_value(cy - half_h, 0, height),
            tf.clip_by_value(cx - half_w, 0, width),
            tf.clip_by_value(cy + half_h, 0, height),
            tf.clip_by_value(cx + half_w, 0, width),
        ]
    )


def cutmix(images, targets, box) -> tuple:
    """Paste the partner's pixels inside `box`. The label weight of the own image is the
    area it keeps after the clipping, not the lambda the box was drawn for.
    Returns (images, targets, that weight)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    ys, xs = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = (ys >= box[0]) & (ys < box[2]) & (xs >= box[1]) & (xs < box[3])
    mixed = tf.where(inside[None, :, :, None], partner(images), images)
    area = tf.cast((box[2] - box[0]) * (box[3] - box[1]), tf.float32)
    lam = 1.0 - area / tf.cast(height * width, tf.float32)
    return mixed, mix_targets(targets, lam), lam


def sample_beta(seed, alpha: float) -> tf.Tensor:
    """lambda ~ Beta(alpha, alpha) as G1 / (G1 + G2) of two Gamma(alpha) draws; float64 so
    that small alphas do not underflow both to 0."""
    s1, s2 = split_seed(seed, 2)
    g1 = tf.random.stateless_gamma([], s1, alpha, dtype=tf.float64)
    g2 = tf.random.stateless_gamma([], s2, alpha, dtype=tf.float64)
    return tf.cast(g1 / (g1 + g2), tf.float32)


@dataclasses.dataclass(frozen=True)
class Mixing:
    """Which of Mixup and CutMix a batch gets. An alpha of 0 turns that method off."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0  # probability that a batch is mixed at all
    switch_prob: float = 0.5  # with both on: probability of CutMix rather than Mixup

    def __post_init__(self):
        for key, value in (("mixup_alpha", self.mixup_alpha), ("cutmix_alpha", self.cutmix_alpha)):
            if not value >= 0:
                raise UserError(
                    f"data.{key} is {value}, but it must be >= 0; set "
                    f"--config.data.{key} to 0 (off) or a Beta parameter such as 0.2 or 1.0."
                )
        for key, value in (("mix_prob", self.prob), ("mix_switch_prob", self.switch_prob)):
            if not 0 <= value <= 1:
                raise UserError(
                    f"data.{key} is {value}, but it is a probability; set --config.data.{key} to a value in [0, 1]."
                )

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def __call__(self, images, labels, seed, num_classes: int) -> tuple:
        """A batch [N, H, W, C] with integer labels [N] -> (mixed images, soft labels
        [N, num_classes] float32). An unmixed batch gets its one-hot labels."""
        targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if not self.enabled:
            return images, targets
        s_apply, s_switch, s_lam, s_center = split_seed(seed, 4)
        height, width = tf.shape(images)[1], tf.shape(images)[2]

        def mixed_up():
            return mixup(images, targets, sample_beta(s_lam, self.mixup_alpha))

        def cut_mixed():
            s_y, s_x = split_seed(s_center, 2)
            center = (
                tf.random.stateless_uniform([], s_y, 0, height, tf.int32),
                tf.random.stateless_uniform([], s_x, 0, width, tf.int32),
            )
            box = cutmix_box(sample_beta(s_lam, self.cutmix_alpha), center, height, width)
            return cutmix(images, targets, box)[:2]

        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = tf.random.stateless_uniform([], s_switch) < self.switch_prob
        else:
            use_cutmix = tf.constant(self.cutmix_alpha > 0)
        apply = tf.random.stateless_uniform([], s_apply) < self.prob
        which = tf.where(apply, tf.where(use_cutmix, 2, 1), 0)
        return tf.switch_case(which, [lambda: (images, targets), mixed_up, cut_mixed])
