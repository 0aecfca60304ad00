"""data.cache: decoded examples kept in memory by position, each stored the first time this process decodes it.

A process reads a different share of the split every epoch, so the cache fills as the process reads: an
example is decoded at most once and only when the process needs it. The cache lives in TF variables that
the tf.data map functions read and write, so a hit costs no Python. It holds images of one fixed shape
(digits, MNIST, CIFAR); decoded images of varying sizes are the large datasets' and are not kept.
"""

import tensorflow as tf


class DecodedCache:
    """Decoded (image, label) of one split by position, and which positions are stored."""

    def __init__(self, num_examples: int, image_shape: tuple, image_dtype: tf.DType):
        self._images = tf.Variable(tf.zeros([num_examples, *image_shape], image_dtype), trainable=False)
        self._labels = tf.Variable(tf.zeros([num_examples], tf.int32), trainable=False)
        self._filled = tf.Variable(tf.zeros([num_examples], tf.bool), trainable=False)

    def missing(self, positions: tf.Tensor) -> tf.Tensor:
        """True for each position not stored yet (what a reader still has to fetch)."""
        return tf.logical_not(tf.gather(self._filled, positions))

    def holds(self, positions) -> bool:
        """Whether every one of `positions` is stored (eagerly, between epochs)."""
        return bool(tf.reduce_all(tf.gather(self._filled, positions)))

    def stored(self, position: tf.Tensor) -> tuple:
        """The stored (image, label) at `position` (or images and labels at a vector of positions)."""
        return tf.gather(self._images, position), tf.gather(self._labels, position)

    def load(self, position: tf.Tensor, decode) -> tuple:
        """(image, label) at `position`: the stored one, or `decode()`'s, which is then stored."""

        def store():
            image, label = decode()
            at = tf.reshape(position, [1])
            writes = [
                tf.raw_ops.ResourceScatterUpdate(resource=self._images.handle, indices=at, updates=image[None]),
                tf.raw_ops.ResourceScatterUpdate(resource=self._labels.handle, indices=at, updates=label[None]),
            ]
            with tf.control_dependencies(writes):  # marked stored only once both are written
                filled = tf.raw_ops.ResourceScatterUpdate(
                    resource=self._filled.handle, indices=at, updates=tf.constant([True])
                )
            with tf.control_dependencies([filled]):
                return tf.identity(image), tf.identity(label)

        return tf.cond(tf.gather(self._filled, position), lambda: self.stored(position), store)


def cache_for(image_feature, num_examples: int) -> DecodedCache | None:
    """A cache for a split of `num_examples` images of `image_feature`, or None when their shape varies."""
    shape = tuple(image_feature.shape)
    if any(d is None for d in shape):
        return None
    return DecodedCache(num_examples, shape, image_feature.tf_dtype)
