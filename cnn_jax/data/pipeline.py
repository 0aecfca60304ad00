"""tf.data input pipelines: one global example order per epoch; each process reads and decodes its share.

The order depends only on (seed, epoch) (cnn_jax/data/order.py): epoch e is a seeded shuffle of the
training positions, cut to whole global batches, and process p of P feeds the slice [p*G/P, (p+1)*G/P) of
every global batch of G, so the processes' batches together are the batch one process would see: any
process or device count trains on the same data. Each process computes the epoch's positions from the
seeds, keeps its slots and reads only those examples (cnn_jax/data/reading.py; a split without random
access is streamed and shuffled the same way, and only this process's examples are decoded). Augmentation
draws its randomness from (epoch seed, slot in the epoch) with stateless ops, so it does not depend on
parallelism either, and a run resumed at step s starts at slot s*G without reading the slots before it.

With `data.minival_size`, a fixed part of the training split (cnn_jax/data/minival.py) is
held out: training reads the rest, and `eval_batches(..., minival=True)` reads it with
the eval transform.

Evaluation reads a split in its stored order (the order TFDS reads it without file
shuffling: a prepared dataset's record order, an image folder's fixed-seed shuffle of
its sorted files), padded to whole batches; each process reads its slice of every batch.
Each eval example carries `index`, its position in that order, counted before any
undecodable image is skipped, so two runs on the same split pair their predictions by `index`.

With `data.skip_corrupt`, undecodable images are dropped: a first decoding pass over each part
(in every process) finds the decodable positions, and the epoch length (and so every step number)
follows from their count, as resuming needs; results.json reports the number skipped.
"""

import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from cnn_jax.data.datasets import Source
from cnn_jax.data.minival import check_minival_size, in_minival
from cnn_jax.data.order import (
    Sharding,
    epoch_order,
    epoch_seed,
    local_batch,
    padded_share,
    process_slots,
    shuffle_buffer,
    steps_per_epoch,
)
from cnn_jax.data.reading import SplitReader
from cnn_jax.data.recipes import for_channels, recipe_from_config
from cnn_jax.errors import UserError

# TF is the input pipeline only: keep it off any accelerator.
tf.config.set_visible_devices([], "GPU")

# The parts of the data a run reads: training examples (the training split less minival),
# minival, and the evaluation split.
TRAIN, MINIVAL, EVAL = "train", "minival", "eval"

# The sharding of a run of one process: every slot.
ONE_PROCESS = Sharding()


def _options() -> tf.data.Options:
    """Deterministic, without tf.data's autotuner: deleting a finished iterator waits for the
    autotuner's thread, which may notice only when it next wakes, up to a minute later, so the end
    of an epoch or of an evaluation could stall training that long (docs/performance.md)."""
    opts = tf.data.Options()
    opts.deterministic = True
    opts.autotune.enabled = False
    return opts


def map_parallelism(configured: int) -> int:
    """Parallel calls of each map: the configured number, or one per CPU core this process may use (-1)."""
    return int(configured) if configured > 0 else len(os.sched_getaffinity(0))


def mix_seed(seed: int, batch_number) -> tf.Tensor:
    """The seed of a global batch's Mixup/CutMix draws. Examples use (seed, slot >= 0),
    so a negative counter never repeats one of theirs."""
    return tf.stack([tf.constant(seed, tf.int64), -1 - tf.cast(batch_number, tf.int64)])


class Pipeline:
    """Train and eval batches (numpy, this process's part) for one dataset and config."""

    def __init__(self, source: Source, config, sharding: Sharding = ONE_PROCESS):
        self.source, self.config, self.sharding = source, config, sharding
        self.size = int(config.data.image_size)
        self.channels = int(config.data.channels) or source.image_shape[-1]
        self.recipe = for_channels(recipe_from_config(config.data), self.channels, source.name)
        self.parallel = map_parallelism(config.data.num_parallel_calls)
        self.minival_size = int(config.data.get("minival_size", 0) or 0)
        check_minival_size(self.minival_size, source.num_train, int(config.batch_size), source.train_split)
        self._in_minival = (
            in_minival(source.num_train, self.minival_size, int(config.data.get("minival_seed", 0)))
            if self.minival_size
            else None
        )
        self._readers, self._positions = {}, {}

    # ---- sizes -----------------------------------------------------------------
    @property
    def num_train(self) -> int:
        """Training examples the pipeline yields (less minival; the decodable ones with skip_corrupt)."""
        return len(self.positions(TRAIN))

    @property
    def num_minival(self) -> int:
        """Minival examples an evaluation of minival counts (0 without minival)."""
        return len(self.positions(MINIVAL)) if self.minival_size else 0

    def _candidates(self, part: str) -> np.ndarray:
        """The stored positions of `part` before data.skip_corrupt drops any, ascending."""
        if part == EVAL:
            return np.arange(self.source.num_eval, dtype=np.int64)
        if self._in_minival is None:
            return np.arange(self.source.num_train, dtype=np.int64)
        return np.flatnonzero(self._in_minival == (part == MINIVAL)).astype(np.int64)

    def _split_of(self, part: str) -> str:
        return self.source.eval_split if part == EVAL else self.source.train_split

    def skipped(self, part: str) -> int:
        """Undecodable images of `part` (TRAIN, MINIVAL or EVAL) dropped by data.skip_corrupt (0
        when it is off)."""
        return len(self._candidates(part)) - len(self.positions(part)) if self.config.data.skip_corrupt else 0

    def skipped_corrupt(self) -> dict:
        """{split name: undecodable images skipped} for the train and eval splits."""
        train = self.skipped(TRAIN) + (self.skipped(MINIVAL) if self.minival_size else 0)
        return {self.source.train_split: train, self.source.eval_split: self.skipped(EVAL)}

    def positions(self, part: str) -> np.ndarray:
        """The stored positions of the examples `part` yields, ascending. With data.skip_corrupt, the
        decodable ones, found by one decoding pass (which also fills data.cache)."""
        if part not in self._positions:
            candidates = self._candidates(part)
            self._positions[part] = self._decodable(part, candidates) if self.config.data.skip_corrupt else candidates
        return self._positions[part]

    def _decodable(self, part: str, candidates: np.ndarray) -> np.ndarray:
        split = self._split_of(part)
        ds = self._reader(split).in_stored_order(candidates, counted=part == TRAIN)
        ds = ds.ignore_errors(log_warning=True).map(lambda slot, position, image, label: position).batch(4096)
        kept = np.concatenate([np.zeros(0, np.int64), *ds.as_numpy_iterator()])
        where = {TRAIN: " outside minival", MINIVAL: "'s minival"}.get(part, "") if self.minival_size else ""
        log = logging.warning if len(kept) < len(candidates) else logging.info
        log(
            "data.skip_corrupt: skipped %d undecodable image(s) of %d in split %r%s of %s",
            len(candidates) - len(kept),
            len(candidates),
            split,
            where,
            self.source.name,
        )
        return kept

    # ---- reading -----------------------------------------------------------------
    def train_access(self) -> str:
        """How this process reads training examples: "random" (by position) or "sequential" (a stream)."""
        return "random" if self._reader(self.source.train_split).random_access else "sequential"

    def decoded_train_examples(self) -> int:
        """Training examples this process has decoded so far (the skip_corrupt pass included)."""
        reader = self._readers.get(self.source.train_split)
        return int(reader.decoded.numpy()) if reader is not None else 0

    def _reader(self, split: str) -> SplitReader:
        if split not in self._readers:
            self._readers[split] = SplitReader(self.source, split, bool(self.config.data.cache), self.parallel)
        return self._readers[split]

    def _to_channels(self, image):
        if image.shape[-1] == 1 and self.channels == 3:
            return tf.image.grayscale_to_rgb(image)
        if image.shape[-1] == 3 and self.channels == 1:  # e.g. a grayscale model on an RGB folder
            return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), image.dtype)
        return image

    def local_batch(self, global_batch: int) -> int:
        return local_batch(global_batch, self.sharding)

    # ---- training ---------------------------------------------------------------
    def _train_examples(self, seed: int, start: int, stop: int, local: int) -> tf.data.Dataset:
        """(slot, position, image, label) of this process's slots of batches [start, stop) of the epoch."""
        g, reader, positions = int(self.config.batch_size), self._reader(self.source.train_split), self.positions(TRAIN)
        buffer = int(self.config.data.shuffle_buffer)
        order = epoch_order(positions, g, buffer, seed)
        slots = process_slots(len(order), local, self.sharding, start * g, stop * g)

        def stream():
            # The same shuffle over the records themselves yields the same order; the records of
            # other processes' slots, and of the slots before `start`, are read but not decoded.
            ds = reader.stream_at(positions)
            ds = ds.shuffle(shuffle_buffer(len(positions), buffer), seed=seed, reshuffle_each_iteration=False)
            ds = ds.take(len(order)).enumerate().skip(start * g).take((stop - start) * g)
            if self.sharding.count > 1:
                p, n = self.sharding.index, self.sharding.count
                ds = ds.filter(lambda slot, example: (slot // local) % n == p)
            return ds.map(lambda slot, example: (slot, *example))

        return reader.at(slots, order[slots], counted=True, stream=stream)

    def train_epoch(self, epoch: int, start_batch: int = 0, stop_batch: int | None = None) -> tf.data.Dataset:
        """This process's part of batches [start_batch, stop_batch) of `epoch` (to the epoch's end by default)."""
        g = int(self.config.batch_size)
        local = self.local_batch(g)
        spe = steps_per_epoch(self.num_train, g)
        stop = spe if stop_batch is None else min(int(stop_batch), spe)
        seed = epoch_seed(int(self.config.seed), epoch)
        recipe, size, mixing = self.recipe, self.size, self.recipe.mixing
        if mixing.enabled and local % 2:
            raise UserError(
                f"Mixup/CutMix mix neighbouring examples, so each process's {local} examples of a "
                f"batch must be even; set --config.batch_size to a multiple of {2 * self.sharding.count}."
            )
        ds = self._train_examples(seed, start_batch, stop, local)

        def augment(slot, position, image, label):
            example_seed = tf.stack([tf.constant(seed, tf.int64), slot])
            out = {"image": recipe.train(self._to_channels(image), example_seed, size), "label": label}
            return {**out, "slot": slot} if mixing.enabled else out

        def mix(batch):
            images, labels = mixing(
                batch["image"], batch["label"], mix_seed(seed, batch["slot"][0] // g), self.source.num_classes
            )
            return {"image": images, "label": labels}

        ds = ds.map(augment, num_parallel_calls=self.parallel, deterministic=True)
        ds = ds.batch(local, drop_remainder=True)
        if mixing.enabled:
            ds = ds.map(mix, num_parallel_calls=self.parallel, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())

    def train_batches(self, start_step: int = 0, stop_step: int | None = None):
        """Numpy batches of global steps [start_step, stop_step) (endless without `stop_step`)."""
        spe = steps_per_epoch(self.num_train, int(self.config.batch_size))
        step = start_step
        while stop_step is None or step < stop_step:
            epoch, offset = divmod(step, spe)
            stop = None if stop_step is None else stop_step - epoch * spe
            yield from self._guard(tfds.as_numpy(self.train_epoch(epoch, offset, stop)), self.source.train_split)
            step = (epoch + 1) * spe

    def _guard(self, batches, split: str):
        """Turn a decoding failure into a sentence naming the undecodable file."""
        try:
            yield from batches
        except tf.errors.InvalidArgumentError as e:
            bad = find_undecodable(self.source, split) if self.source.is_folder else None
            reason = str(e).splitlines()[0][:120]
            where = (
                f"Image {bad[0]} cannot be decoded ({bad[1]})"
                if bad
                else f"An image of {self.source.name!r} split {split!r} cannot be decoded ({reason})"
            )
            raise UserError(
                f"{where}; remove or replace it, or set --config.data.skip_corrupt=True to skip undecodable images."
            ) from None

    # ---- evaluation ---------------------------------------------------------------
    def eval_dataset(self, global_batch: int, recipe_eval=None, minival: bool = False) -> tf.data.Dataset:
        """The whole eval split (or minival) once, in stored order, this process's slice of each
        batch; the last batch is padded with mask-0 examples."""
        local = self.local_batch(global_batch)
        size, recipe, part = self.size, self.recipe, MINIVAL if minival else EVAL
        split, positions = self._split_of(part), self.positions(part)
        preprocess = recipe_eval or (lambda image: recipe.eval(image, size))
        mine, pad = padded_share(len(positions), global_batch, self.sharding)
        ds = (
            self._reader(split)
            .in_stored_order(positions[mine], counted=False)
            .map(
                lambda slot, position, image, label: {
                    "image": preprocess(self._to_channels(image)),
                    "label": label,
                    "mask": tf.constant(1.0),
                    "index": tf.cast(position, tf.int32),
                },
                num_parallel_calls=self.parallel,
                deterministic=True,
            )
        )
        if pad:  # built from the element spec, without reading an example
            blank = {k: tf.zeros(spec.shape, spec.dtype) for k, spec in ds.element_spec.items()}
            ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(pad))
        return ds.batch(local, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(_options())

    def eval_batches(self, global_batch: int, recipe_eval=None, minival: bool = False):
        split = self.source.train_split if minival else self.source.eval_split
        return self._guard(tfds.as_numpy(self.eval_dataset(global_batch, recipe_eval, minival)), split)


def find_undecodable(source: Source, split: str):
    """(path, reason) of the first image of an image-folder split that TF cannot decode."""
    import pathlib

    root = pathlib.Path(source.folder) / split
    for path in sorted(root.glob("*/*")):
        try:
            tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
        except tf.errors.InvalidArgumentError as e:
            return path, str(e).splitlines()[0][:80]
    return None
