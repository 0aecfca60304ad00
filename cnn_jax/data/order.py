"""The order of examples: which stored position fills each slot of an epoch, and which slots a process reads.

An epoch is a stream of slots 0, 1, 2, ...: a seeded shuffle of the training positions (the split's stored
positions less minival and, with data.skip_corrupt, less the undecodable ones), cut to whole global batches.
tf.data's `shuffle(buffer, seed)` draws from a random stream fixed by the seed, the buffer and the number of
elements, never by the elements themselves, so shuffling the positions alone yields the order in which
shuffling the decoded examples would yield them, without reading one.

Process p of P reads slot j when `(j // local_batch) % P == p`, where local_batch = G / P: the slice
[p*G/P, (p+1)*G/P) of every global batch of G. The processes' slots together are the epoch, each slot once,
so the data a step sees depends only on (seed, epoch), never on the number of processes or devices.

Everything here is a pure function of sizes and seeds; nothing is read.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cnn_jax.errors import UserError

# Shuffled positions are copied out of tf.data this many at a time (one element at a time would be slow).
_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Sharding:
    """Which slice of each global batch this process feeds."""

    index: int = 0
    count: int = 1


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint32)[0])


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
    steps = num_examples // global_batch
    if steps == 0:
        raise UserError(
            f"batch_size {global_batch} is larger than the {num_examples} training examples; "
            "set --config.batch_size smaller."
        )
    return steps


def shuffle_buffer(num_examples: int, configured: int) -> int:
    """The buffer an epoch's shuffle uses: the configured one, at most the split (a full permutation)."""
    return max(1, min(num_examples, int(configured)))


def shuffled(positions: np.ndarray, buffer: int, seed: int) -> np.ndarray:
    """`positions` in the order tf.data's `shuffle(buffer, seed)` yields them (TF's windowed shuffle when
    the buffer is smaller than the input)."""
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(positions, np.int64))
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False).batch(_CHUNK)
    chunks = list(ds.as_numpy_iterator())
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int64)


def epoch_order(positions: np.ndarray, global_batch: int, buffer: int, seed: int) -> np.ndarray:
    """The epoch's stream: slot j holds the stored position `order[j]`; whole global batches only."""
    steps = steps_per_epoch(len(positions), global_batch)
    return shuffled(positions, shuffle_buffer(len(positions), buffer), seed)[: steps * global_batch]


def local_batch(global_batch: int, sharding: Sharding) -> int:
    """The examples of each global batch one process feeds."""
    if global_batch % sharding.count:
        raise UserError(
            f"Batch size {global_batch} is not divisible by the {sharding.count} processes; "
            "set --config.batch_size to a multiple of it."
        )
    return global_batch // sharding.count


def process_slots(num_slots: int, local: int, sharding: Sharding, start: int = 0, stop: int | None = None):
    """The slots of [start, stop) (of a stream of `num_slots`) that process `sharding.index` reads, ascending
    (an int64 array)."""
    slots = np.arange(start, num_slots if stop is None else min(stop, num_slots), dtype=np.int64)
    return slots[(slots // local) % sharding.count == sharding.index]


def padded_share(num_examples: int, global_batch: int, sharding: Sharding) -> tuple:
    """(indices into the `num_examples` this process reads, padding examples it adds) when a stream of
    `num_examples` in stored order is padded to whole global batches (evaluation). The padding is the
    stream's tail, so a process's padding comes after all of its examples."""
    padded = -(-num_examples // global_batch) * global_batch
    slots = process_slots(padded, local_batch(global_batch, sharding), sharding)
    real = slots[slots < num_examples]
    return real, len(slots) - len(real)
