"""minival: a held-out part of the training split, for every choice made during training.

The reported split (validation or test) must not choose anything: not the checkpoint,
not when a plateau schedule lowers the rate, not a sweep's best trial. Those choices
read minival instead, `data.minival_size` examples of the training split that training
never reads.

Which examples: the first `size` entries of a permutation of the split's positions,
seeded by `data.minival_seed` only. The positions count examples in the order TFDS reads
the split without file shuffling, the same order every run reads, so the carve depends
on the dataset, the size and minival_seed, never on the run's `seed`; runs with
different seeds select on the same examples. A larger size keeps the smaller one's
examples (the permutation's prefix grows).
"""

import numpy as np
import tensorflow as tf

from cnn_jax.errors import UserError

# Mixed into minival_seed so that the carve's stream is not the stream of any other
# seeded draw that uses the same small integer.
_STREAM = 0x6D696E69  # "mini"


def minival_positions(num_examples: int, size: int, seed: int = 0) -> np.ndarray:
    """The sorted positions (int64) of the `size` minival examples of a split of
    `num_examples`."""
    permutation = np.random.default_rng(np.random.SeedSequence([_STREAM, int(seed)])).permutation(num_examples)
    return np.sort(permutation[:size]).astype(np.int64)


def in_minival(num_examples: int, size: int, seed: int = 0) -> np.ndarray:
    """A boolean per position of the split: True for a minival example."""
    mask = np.zeros(num_examples, bool)
    mask[minival_positions(num_examples, size, seed)] = True
    return mask


def check_minival_size(size: int, num_examples: int, batch_size: int, split: str) -> None:
    """Refuse a size that leaves no whole training batch (or is negative)."""
    if size < 0:
        raise UserError(f"data.minival_size must be a number of examples or 0 (no minival), not {size}.")
    if size and num_examples - size < batch_size:
        raise UserError(
            f"data.minival_size {size} leaves {num_examples - size} of the {num_examples} examples of "
            f"split {split!r} for training, fewer than one batch of {batch_size}; "
            "set --config.data.minival_size smaller."
        )


def keep_part(ds: tf.data.Dataset, mask: np.ndarray, minival: bool) -> tf.data.Dataset:
    """Of an enumerated split (position, example), keep the minival examples, or the others."""
    table = tf.constant(mask)
    return ds.filter(lambda i, *_: tf.equal(tf.gather(table, i), minival))
