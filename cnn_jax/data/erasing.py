"""Random Erasing (Zhong, Zheng, Kang, Li & Yang 2020, "Random Erasing Data Augmentation",
Algorithm 1): with probability p, one rectangle of the training image is filled with random
values. Its area is a fraction U(s_l, s_h) of the image's and its aspect ratio (height over
width) U(r_1, 1/r_1); the paper's defaults are p = 0.5, s_l = 0.02, s_h = 0.4, r_1 = 0.3.

A rectangle that does not fit inside the image is drawn again, up to ATTEMPTS times as the
authors' code does; all draws are made at once, and the first that fits is used (none: the
image is left as it is). The fill is uniform on 0-255 per pixel and channel (the paper's
"RE-R", its best fill); the authors' Fashion-MNIST code fills a constant instead. Every draw
comes from the example's seed (stateless ops), so the erasing repeats exactly for a given
(seed, position), on any number of devices.
"""

import tensorflow as tf

from cnn_jax.data import augment as A

ATTEMPTS = 100
AREA_RANGE = (0.02, 0.4)  # s_l, s_h: the erased fraction of the image's area
MIN_ASPECT = 0.3  # r_1: aspect ratios in [r_1, 1 / r_1]


def erasing_box(seed, height, width, area_range=AREA_RANGE, min_aspect=MIN_ASPECT) -> tuple:
    """(found, top, left, box_height, box_width) as int32 scalars (found: 0 or 1): the first of
    ATTEMPTS drawn rectangles that fits strictly inside a height x width image, placed
    uniformly."""
    s_area, s_aspect, s_top, s_left = A.split_seed(seed, 4)
    area = tf.cast(height * width, tf.float32)
    target = tf.random.stateless_uniform([ATTEMPTS], s_area, area_range[0], area_range[1]) * area
    aspect = tf.random.stateless_uniform([ATTEMPTS], s_aspect, min_aspect, 1.0 / min_aspect)
    box_h = tf.cast(tf.round(tf.sqrt(target * aspect)), tf.int32)
    box_w = tf.cast(tf.round(tf.sqrt(target / aspect)), tf.int32)
    fits = (box_h < height) & (box_w < width)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    found = tf.cast(tf.reduce_any(fits), tf.int32)
    box_h, box_w = box_h[first] * found, box_w[first] * found
    # Uniform over the height - box_h + 1 (width - box_w + 1) positions that keep it inside.
    top = tf.random.stateless_uniform([], s_top, 0, height - box_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], s_left, 0, width - box_w + 1, dtype=tf.int32)
    return found, top, left, box_h, box_w


def random_erasing(image, seed, probability: float, area_range=AREA_RANGE, min_aspect=MIN_ASPECT) -> tf.Tensor:
    """`image` (float32 [H, W, C], 0-255 scale) with, with `probability`, one rectangle
    filled with uniform random values."""
    s_apply, s_box, s_fill = A.split_seed(seed, 3)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    found, top, left, box_h, box_w = erasing_box(s_box, height, width, area_range, min_aspect)
    erase = (tf.random.stateless_uniform([], s_apply) < probability) & (found > 0)
    rows, cols = tf.range(height), tf.range(width)
    inside = ((rows >= top) & (rows < top + box_h))[:, None] & ((cols >= left) & (cols < left + box_w))[None, :]
    fill = tf.random.stateless_uniform(shape, s_fill, 0.0, A.PIXEL_MAX)
    return tf.where(erase & inside[:, :, None], fill, image)
