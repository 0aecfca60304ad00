"""Each process reads and decodes only its share of every epoch, in the one global order.

The order computed from the positions alone is the order of shuffling the decoded examples; the
processes' slots are disjoint and make the epoch; a process decodes its share only, by position
(ArrayRecord) or from a stream of encoded records (TFRecord), and both give the batches that
shuffling the decoded examples gives; a resumed epoch decodes nothing before its resume point.
Two real processes, each decoding half of what one process does, are tested in
tests/test_resume_multiprocess.py."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from helpers import digits_config

from cnn_jax.data.datasets import open_source
from cnn_jax.data.minival import in_minival, keep_part
from cnn_jax.data.order import Sharding, epoch_order, epoch_seed, process_slots
from cnn_jax.data.pipeline import TRAIN, Pipeline

NUM_TRAIN, STEPS_PER_EPOCH = 1497, 46  # digits at batch 32


@pytest.fixture(scope="module")
def formats(tmp_path_factory) -> dict:
    """The digits prepared once as ArrayRecord (read by position) and once as TFRecord (streamed)."""
    import cnn_jax.data.digits  # noqa: F401  (registers the builder)

    array_record, tfrecord = tmp_path_factory.mktemp("array_record"), tmp_path_factory.mktemp("tfrecord")
    tfds.builder("digits", data_dir=str(tfrecord)).download_and_prepare(file_format="tfrecord")
    sources = {
        "array_record": open_source("digits", str(array_record)),
        "tfrecord": open_source("digits", str(tfrecord)),
    }
    assert [s.builder.info.file_format.value for s in sources.values()] == ["array_record", "tfrecord"]
    return sources


def shuffled_examples(source, buffer: int, seed: int, minival: np.ndarray | None = None) -> tf.data.Dataset:
    """(slot, position, image, label) of the epoch's stream made by shuffling the decoded examples
    themselves (a TFRecord split read in stored order): the reference the index order must equal."""
    ds = source.builder.as_dataset(
        split="train", shuffle_files=False, as_supervised=True, read_config=tfds.ReadConfig(shuffle_seed=0)
    ).enumerate()
    if minival is not None:
        ds = keep_part(ds, minival, False)
    ds = ds.map(lambda i, example: (i, example[0], tf.cast(example[1], tf.int32)))
    return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False).enumerate().map(lambda j, ex: (j, *ex))


@pytest.mark.parametrize("minival_size,buffer", [(0, 16_384), (150, 16_384), (0, 100)])
def test_index_order_is_the_order_of_shuffling_the_decoded_examples(formats, minival_size, buffer):
    source = formats["tfrecord"]
    pipe = Pipeline(source, digits_config(32, minival_size=minival_size, shuffle_buffer=buffer))
    minival = in_minival(NUM_TRAIN, minival_size) if minival_size else None
    for seed, epoch in [(0, 0), (0, 1), (7, 3)]:
        es = epoch_seed(seed, epoch)
        order = epoch_order(pipe.positions(TRAIN), 32, buffer, es)
        reference = [int(p) for _, p, *_ in shuffled_examples(source, min(buffer, pipe.num_train), es, minival)]
        assert len(order) == (pipe.num_train // 32) * 32
        assert order.tolist() == reference[: len(order)]
    assert epoch_order(pipe.positions(TRAIN), 32, buffer, 1).tolist() != order.tolist()


@pytest.mark.parametrize("processes", [2, 4])
def test_process_slots_are_disjoint_and_together_make_every_global_batch(processes):
    order = epoch_order(np.arange(NUM_TRAIN), 32, 16_384, epoch_seed(0, 2))
    local = 32 // processes
    slots = [process_slots(len(order), local, Sharding(p, processes)) for p in range(processes)]
    assert sorted(np.concatenate(slots).tolist()) == list(range(len(order)))  # disjoint, and every slot
    for b in range(len(order) // 32):
        parts = [order[s[b * local : (b + 1) * local]] for s in slots]
        assert np.concatenate(parts).tolist() == order[b * 32 : (b + 1) * 32].tolist()
    # A resume point: the slots at and after it, of the same process, nothing before.
    later = process_slots(len(order), local, Sharding(1, processes), start=10 * 32)
    assert later.tolist() == [s for s in slots[1] if s >= 320]


@pytest.mark.parametrize("fmt", ["array_record", "tfrecord"])
def test_two_processes_decode_half_each_and_feed_the_batches_of_shuffled_examples(formats, fmt):
    config = digits_config(32, minival_size=150, cache=False)
    pipes = [Pipeline(formats[fmt], config, Sharding(p, 2)) for p in range(2)]
    assert pipes[0].train_access() == ("random" if fmt == "array_record" else "sequential")
    epoch, seed, steps = 1, epoch_seed(0, 1), pipes[0].num_train // 32
    parts = [list(p.train_epoch(epoch).as_numpy_iterator()) for p in pipes]
    assert [p.decoded_train_examples() for p in pipes] == [steps * 16, steps * 16]
    assert steps * 16 <= NUM_TRAIN / 2 + 16
    # The reference: shuffle the decoded examples, augment each by (epoch seed, slot), cut to batches.
    recipe, minival = pipes[0].recipe, in_minival(NUM_TRAIN, 150)
    reference = shuffled_examples(formats["tfrecord"], pipes[0].num_train, seed, minival).map(
        lambda j, i, image, label: (recipe.train(image, tf.stack([tf.constant(seed, tf.int64), j]), 32), label)
    )
    for b, (image, label) in enumerate(reference.batch(32).take(steps).as_numpy_iterator()):
        np.testing.assert_array_equal(np.concatenate([parts[0][b]["image"], parts[1][b]["image"]]), image)
        np.testing.assert_array_equal(np.concatenate([parts[0][b]["label"], parts[1][b]["label"]]), label)


def test_each_process_evaluates_its_slice_of_every_batch(formats):
    whole = list(Pipeline(formats["array_record"], digits_config(64)).eval_batches(64))
    parts = [
        list(Pipeline(formats["array_record"], digits_config(64), Sharding(p, 2)).eval_batches(64)) for p in (0, 1)
    ]
    assert len(whole) == len(parts[0]) == len(parts[1]) == 5  # 300 = 4 * 64 + 44, padded
    for w, a, b in zip(whole, *parts):
        for key in ("image", "label", "mask", "index"):
            np.testing.assert_array_equal(w[key], np.concatenate([a[key], b[key]]))


@pytest.mark.parametrize("fmt,cache", [("array_record", True), ("array_record", False), ("tfrecord", False)])
def test_a_resumed_epoch_decodes_nothing_before_its_resume_point(formats, fmt, cache):
    config = digits_config(32, cache=cache)
    from_start = Pipeline(formats[fmt], config).train_batches(0)
    reference = [next(from_start) for _ in range(STEPS_PER_EPOCH + 10)][STEPS_PER_EPOCH + 4 :]
    resumed = Pipeline(formats[fmt], config)
    batches = list(resumed.train_batches(STEPS_PER_EPOCH + 4, STEPS_PER_EPOCH + 10))  # epoch 1, steps 4-9
    assert len(batches) == len(reference) == 6
    for got, want in zip(batches, reference):
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_array_equal(got["label"], want["label"])
    assert resumed.decoded_train_examples() == 6 * 32  # the examples of those six steps, no other


def test_data_cache_serves_later_epochs_without_decoding(formats):
    pipe = Pipeline(formats["array_record"], digits_config(NUM_TRAIN // 3, cache=True))  # 3 steps: every example
    first = list(pipe.train_batches(0, 3))
    assert pipe.decoded_train_examples() == NUM_TRAIN
    again = Pipeline(formats["array_record"], digits_config(NUM_TRAIN // 3, cache=False))
    for cached, fresh in zip(list(pipe.train_batches(3, 6)), list(again.train_batches(3, 6))):
        np.testing.assert_array_equal(cached["image"], fresh["image"])
    assert pipe.decoded_train_examples() == NUM_TRAIN and len(first) == 3


def test_an_image_folder_is_read_by_position_in_tfds_order(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8, 3), 20 * i + 100 * (cls == "b"), np.uint8)).save(
                tmp_path / "train" / cls / f"{i}.png"
            )
    source = open_source(str(tmp_path), eval_split="train")
    pipe = Pipeline(source, digits_config(4, recipe="none", image_size=8))
    assert pipe.train_access() == "random"
    stored = tfds.as_numpy(source.builder.as_dataset(split="train", shuffle_files=False, as_supervised=True))
    batches = list(pipe.eval_batches(5, recipe_eval=lambda image: image))
    index, images = (np.concatenate([b[k] for b in batches]) for k in ("index", "image"))
    labels = np.concatenate([b["label"] for b in batches])
    assert index.tolist() == list(range(10))
    for (image, label), got_image, got_label in zip(stored, images, labels):
        np.testing.assert_array_equal(image, got_image)
        assert label == got_label
