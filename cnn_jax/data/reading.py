"""One process's examples of one split, at the positions it asks for: from data.cache when it holds them,
read by position where the storage allows (cnn_jax/data/records.py), else decoded from a stream of the
split's encoded records that the caller has put in the same order."""

import numpy as np
import tensorflow as tf

from cnn_jax.data.decoded_cache import cache_for
from cnn_jax.data.records import open_records

# Positions fetched per reader call: one Python call per batch of records, not per record.
FETCH = 128


class SplitReader:
    """Datasets of (slot, position, image, label) of one split. `decoded` counts the examples decoded
    by calls marked `counted` (training examples)."""

    def __init__(self, source, split: str, cache: bool, parallel: int):
        self.records = open_records(source.builder, split, source.is_folder)
        self.cache = cache_for(self.records.image_feature, self.records.num_examples) if cache else None
        self.parallel = parallel
        self.decoded = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def random_access(self) -> bool:
        return self.records.random_access

    def at(self, slots: np.ndarray, positions: np.ndarray, counted: bool, stream=None) -> tf.data.Dataset:
        """(slot, position, image, label) at `positions`, slot by slot: from the cache when it holds them
        all, else read by position, else decoded from `stream()`, the split's (slot, position, fetched)
        in the same order (storage without random access)."""
        if self.cache is not None and self.cache.holds(positions):
            ds = tf.data.Dataset.from_tensor_slices((slots, positions)).batch(FETCH)
            ds = ds.map(
                lambda slot, position: (slot, position, *self.cache.stored(position)),
                num_parallel_calls=self.parallel,
                deterministic=True,
            )
            return ds.unbatch()
        if self.random_access:
            return self._decoded(self._fetched(slots, positions, counted), counted=False)  # counted as fetched
        return self._decoded(stream(), counted)

    def in_stored_order(self, positions: np.ndarray, counted: bool) -> tf.data.Dataset:
        """(slot, position, image, label) at ascending `positions`, in that order (the slot is the position)."""

        def stream():
            return self.stream_at(positions).map(lambda position, fetched: (position, position, fetched))

        return self.at(positions, positions, counted, stream)

    def stream_at(self, positions: np.ndarray) -> tf.data.Dataset:
        """(position, fetched) of the split's stream, kept at `positions` (storage without random access)."""
        member = np.zeros(self.records.num_examples, bool)
        member[positions] = True
        table = tf.constant(member)
        return self.records.stream().filter(lambda position, fetched: tf.gather(table, position))

    def _fetched(self, slots: np.ndarray, positions: np.ndarray, counted: bool) -> tf.data.Dataset:
        """(slot, position, fetched), reading only `positions`, and of those only what the cache lacks
        (each of which is then decoded: `counted` counts them here, once per batch)."""
        cache, records, decoded = self.cache, self.records, self.decoded

        def fetch(slot, position):
            needed = cache.missing(position) if cache is not None else tf.ones_like(position, tf.bool)
            fetched = records.fetch(position, needed)
            if counted:
                done = decoded.assign_add(tf.reduce_sum(tf.cast(needed, tf.int64)), read_value=False)
                with tf.control_dependencies([done]):
                    fetched = tf.identity(fetched)
            return slot, position, fetched

        ds = tf.data.Dataset.from_tensor_slices((slots, positions)).batch(FETCH)
        return ds.map(fetch, num_parallel_calls=self.parallel, deterministic=True).unbatch()

    def _decoded(self, ds: tf.data.Dataset, counted: bool) -> tf.data.Dataset:
        """(slot, position, fetched) -> (slot, position, image, label), through the cache when there is one;
        `counted` counts each decode."""
        cache, records, decoded = self.cache, self.records, self.decoded

        def load(slot, position, fetched):
            def decode():
                image, label = records.decode(position, fetched)
                if counted:
                    with tf.control_dependencies([image]):
                        done = decoded.assign_add(1, read_value=False)
                    with tf.control_dependencies([done]):
                        image = tf.identity(image)
                return image, label

            image, label = cache.load(position, decode) if cache is not None else decode()
            return slot, position, image, label

        return ds.map(load, num_parallel_calls=self.parallel, deterministic=True)
