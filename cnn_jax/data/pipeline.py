"""tf.data input pipelines: one global example order per epoch, sharded by process.

The order depends only on (seed, epoch): epoch e is a seeded shuffle of the split,
cut to whole global batches. Process p of P takes, from each global batch of G
examples, the slice [p*G/P, (p+1)*G/P), so the concatenation of the processes'
batches is the batch a single process would see: any process or device count
trains on the same data. Augmentation draws its randomness from (epoch seed,
position in the epoch) with stateless ops, so it does not depend on parallelism
either, and a run resumed at step s regenerates exactly the batches from s on.

With `data.minival_size`, a fixed part of the training split (cnn_jax/data/minival.py) is
held out: training reads the rest, and `eval_batches(..., minival=True)` reads it with
the eval transform.

Evaluation reads a split in its stored order (the order TFDS reads it without file
shuffling: a prepared dataset's record order, an image folder's fixed-seed shuffle of
its sorted files). Each eval example carries `index`, its position in that order,
counted before any undecodable image is skipped, so two runs on the same split pair
their predictions by `index`.

With `data.skip_corrupt`, undecodable images are dropped, and a first decoding pass
over each split counts the rest: the epoch length (and so every step number) follows
from that count, as resuming needs, and results.json reports the number skipped.
"""

import dataclasses
import logging

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from cnn_jax.data.datasets import Source
from cnn_jax.data.minival import check_minival_size, in_minival, keep_part
from cnn_jax.data.recipes import for_channels, recipe_from_config
from cnn_jax.errors import UserError

# TF is the input pipeline only: keep it off any accelerator.
tf.config.set_visible_devices([], "GPU")

# The parts of the data a run reads: training examples (the training split less minival),
# minival, and the evaluation split.
TRAIN, MINIVAL, EVAL = "train", "minival", "eval"


@dataclasses.dataclass(frozen=True)
class Sharding:
    """Which slice of each global batch this process feeds."""

    index: int = 0
    count: int = 1


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint32)[0])


def _options() -> tf.data.Options:
    opts = tf.data.Options()
    opts.deterministic = True
    opts.autotune.ram_budget = 2 * 2**30
    return opts


def mix_seed(seed: int, batch_number) -> tf.Tensor:
    """The seed of a global batch's Mixup/CutMix draws. Examples use (seed, position >= 0),
    so a negative counter never repeats one of theirs."""
    return tf.stack([tf.constant(seed, tf.int64), -1 - tf.cast(batch_number, tf.int64)])


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
    steps = num_examples // global_batch
    if steps == 0:
        raise UserError(
            f"batch_size {global_batch} is larger than the {num_examples} training examples; "
            "set --config.batch_size smaller."
        )
    return steps


class Pipeline:
    """Train and eval batches (numpy, this process's part) for one dataset and config."""

    def __init__(self, source: Source, config, sharding: Sharding = Sharding()):
        self.source, self.config, self.sharding = source, config, sharding
        self.size = int(config.data.image_size)
        self.channels = int(config.data.channels) or source.image_shape[-1]
        self.recipe = for_channels(recipe_from_config(config.data), self.channels, source.name)
        self.parallel = tf.data.AUTOTUNE if config.data.num_parallel_calls < 0 else config.data.num_parallel_calls
        self.minival_size = int(config.data.get("minival_size", 0) or 0)
        check_minival_size(self.minival_size, source.num_train, int(config.batch_size), source.train_split)
        self._in_minival = (
            in_minival(source.num_train, self.minival_size, int(config.data.get("minival_seed", 0)))
            if self.minival_size
            else None
        )
        self._train_base = self._examples(TRAIN)  # what every epoch shuffles
        self._skipped = {}

    # ---- sizes -----------------------------------------------------------------
    @property
    def num_train(self) -> int:
        """Training examples the pipeline yields (less minival; the decodable ones with skip_corrupt)."""
        return self._part_size(TRAIN) - self.skipped(TRAIN)

    @property
    def num_minival(self) -> int:
        """Minival examples an evaluation of minival counts (0 without minival)."""
        return self._part_size(MINIVAL) - self.skipped(MINIVAL) if self.minival_size else 0

    def _part_size(self, part: str) -> int:
        """Examples of `part` before data.skip_corrupt drops any."""
        if part == EVAL:
            return self.source.num_eval
        return self.minival_size if part == MINIVAL else self.source.num_train - self.minival_size

    def _split_of(self, part: str) -> str:
        return self.source.eval_split if part == EVAL else self.source.train_split

    def skipped(self, part: str) -> int:
        """Undecodable images of `part` (TRAIN, MINIVAL or EVAL) dropped by data.skip_corrupt (0
        when it is off). Counted by one decoding pass, which also fills data.cache for training."""
        if not self.config.data.skip_corrupt:
            return 0
        if part not in self._skipped:
            ds = self._train_base if part == TRAIN else self._examples(part)
            kept = int(ds.reduce(np.int64(0), lambda n, *_: n + 1))
            total = self._part_size(part)
            self._skipped[part] = total - kept
            where = {TRAIN: " outside minival", MINIVAL: "'s minival"}.get(part, "") if self.minival_size else ""
            log = logging.warning if kept < total else logging.info
            log(
                "data.skip_corrupt: skipped %d undecodable image(s) of %d in split %r%s of %s",
                total - kept,
                total,
                self._split_of(part),
                where,
                self.source.name,
            )
        return self._skipped[part]

    def skipped_corrupt(self) -> dict:
        """{split name: undecodable images skipped} for the train and eval splits."""
        train = self.skipped(TRAIN) + (self.skipped(MINIVAL) if self.minival_size else 0)
        return {self.source.train_split: train, self.source.eval_split: self.skipped(EVAL)}

    def positions(self, part: str) -> np.ndarray:
        """The stored positions of the examples `part` yields, in the order it reads them
        (one decoding pass; for checks and inspection)."""
        ds = (self._train_base if part == TRAIN else self._examples(part)).map(lambda i, image, label: i)
        return np.fromiter(ds.as_numpy_iterator(), np.int64)

    # ---- sources -------------------------------------------------------------
    def _examples(self, part: str) -> tf.data.Dataset:
        """(position, image, label) of `part` in the split's stored order. Positions are counted
        before skip_corrupt drops an image, so a position names the same example in every run."""
        ds = self.source.builder.as_dataset(
            split=self._split_of(part),
            shuffle_files=False,
            as_supervised=True,
            read_config=tfds.ReadConfig(shuffle_seed=0),
        ).enumerate()
        if self.config.data.skip_corrupt:
            ds = ds.ignore_errors(log_warning=True)
        if self._in_minival is not None and part != EVAL:
            ds = keep_part(ds, self._in_minival, part == MINIVAL)
        ds = ds.map(lambda i, example: (i, example[0], tf.cast(example[1], tf.int32)))
        return ds.cache() if self.config.data.cache else ds

    def _to_channels(self, image):
        if image.shape[-1] == 1 and self.channels == 3:
            return tf.image.grayscale_to_rgb(image)
        if image.shape[-1] == 3 and self.channels == 1:  # e.g. a grayscale model on an RGB folder
            return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), image.dtype)
        return image

    def _local_slice(self, ds: tf.data.Dataset, local_batch: int) -> tf.data.Dataset:
        """Keep (position, example) pairs whose global batch slice belongs to this process."""
        if self.sharding.count == 1:
            return ds
        p, n = self.sharding.index, self.sharding.count
        return ds.filter(lambda i, *_: (i // local_batch) % n == p)

    def local_batch(self, global_batch: int) -> int:
        if global_batch % self.sharding.count:
            raise UserError(
                f"Batch size {global_batch} is not divisible by the {self.sharding.count} processes; "
                "set --config.batch_size to a multiple of it."
            )
        return global_batch // self.sharding.count

    # ---- training ---------------------------------------------------------------
    def train_epoch(self, epoch: int, start_batch: int = 0) -> tf.data.Dataset:
        g = int(self.config.batch_size)
        local = self.local_batch(g)
        spe = steps_per_epoch(self.num_train, g)
        seed = epoch_seed(int(self.config.seed), epoch)
        buffer = max(1, min(self.num_train, int(self.config.data.shuffle_buffer)))
        ds = self._train_base.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
        ds = ds.take(spe * g).enumerate().skip(start_batch * g)
        ds = self._local_slice(ds, local)
        recipe, size, mixing = self.recipe, self.size, self.recipe.mixing
        if mixing.enabled and local % 2:
            raise UserError(
                f"Mixup/CutMix mix neighbouring examples, so each process's {local} examples of a "
                f"batch must be even; set --config.batch_size to a multiple of {2 * self.sharding.count}."
            )

        def augment(i, example):
            _, image, label = example
            example_seed = tf.stack([tf.constant(seed, tf.int64), i])
            out = {"image": recipe.train(self._to_channels(image), example_seed, size), "label": label}
            return {**out, "position": i} if mixing.enabled else out

        def mix(batch):
            images, labels = mixing(
                batch["image"], batch["label"], mix_seed(seed, batch["position"][0] // g), self.source.num_classes
            )
            return {"image": images, "label": labels}

        ds = ds.map(augment, num_parallel_calls=self.parallel, deterministic=True)
        ds = ds.batch(local, drop_remainder=True)
        if mixing.enabled:
            ds = ds.map(mix, num_parallel_calls=self.parallel, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())

    def train_batches(self, start_step: int = 0):
        """Endless numpy batches from global step `start_step` on."""
        spe = steps_per_epoch(self.num_train, int(self.config.batch_size))
        epoch, offset = divmod(start_step, spe)
        while True:
            produced = 0
            for batch in self._guard(tfds.as_numpy(self.train_epoch(epoch, offset)), self.source.train_split):
                produced += 1
                yield batch
            if produced == 0 and offset == 0:
                raise UserError(
                    f"Epoch {epoch} of {self.source.name!r} produced no batch (too few decodable "
                    "examples for the batch size); set --config.batch_size smaller."
                )
            epoch, offset = epoch + 1, 0

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
        """The whole eval split (or minival) once, in stored order; the last batch is padded
        with mask-0 examples."""
        local = self.local_batch(global_batch)
        size, recipe, part = self.size, self.recipe, MINIVAL if minival else EVAL
        preprocess = recipe_eval or (lambda image: recipe.eval(image, size))
        ds = self._examples(part).map(
            lambda i, image, label: {
                "image": preprocess(self._to_channels(image)),
                "label": label,
                "mask": tf.constant(1.0),
                "index": tf.cast(i, tf.int32),
            },
            num_parallel_calls=self.parallel,
            deterministic=True,
        )
        pad = (-(self._part_size(part) - self.skipped(part))) % global_batch
        if pad:
            # Built from the element spec: reading one element would leave the split's in-memory
            # cache half-filled, and a concurrent reader can then see it as complete and empty.
            blank = {k: tf.zeros(spec.shape, spec.dtype) for k, spec in ds.element_spec.items()}
            ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(pad))
        ds = self._local_slice(ds.enumerate(), local).map(lambda i, ex: ex)
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
