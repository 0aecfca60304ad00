"""The digits dataset and the pipeline's order, sharding, resume and eval padding."""

import numpy as np
import pytest
from helpers import digits_config

from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline, Sharding, map_parallelism
from cnn_jax.errors import UserError


def test_digits_split_is_fixed_and_documented(data_dir):
    src = open_source("digits", data_dir)
    assert (src.num_train, src.num_eval, src.num_classes) == (1497, 300, 10)
    assert src.eval_split == "test" and src.image_shape == (32, 32, 1)
    labels = np.concatenate([b["label"] for b in Pipeline(src, digits_config(100)).eval_batches(100)])
    # every sixth scikit-learn image: the test labels are those of indices 0, 6, 12, ...
    from sklearn.datasets import load_digits

    assert sorted(labels.tolist()) == sorted(load_digits().target[::6].tolist())


def test_eval_counts_every_example_once_with_a_partial_last_batch(data_dir):
    src = open_source("digits", data_dir)
    batches = list(Pipeline(src, digits_config()).eval_batches(64))  # 300 = 4 * 64 + 44
    assert len(batches) == 5 and all(b["image"].shape[0] == 64 for b in batches)
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.sum() == 300 and mask[:300].all() and not mask[300:].any()


def test_process_slices_concatenate_to_the_single_process_batch(data_dir):
    src = open_source("digits", data_dir)
    single = Pipeline(src, digits_config(32)).train_epoch(epoch=1)
    parts = [Pipeline(src, digits_config(32), Sharding(p, 2)).train_epoch(epoch=1) for p in range(2)]
    for whole, a, b in zip(single.take(3), parts[0].take(3), parts[1].take(3)):
        np.testing.assert_array_equal(whole["image"].numpy(), np.concatenate([a["image"], b["image"]]))
        np.testing.assert_array_equal(whole["label"].numpy(), np.concatenate([a["label"], b["label"]]))


def test_resuming_at_a_step_gives_the_same_batches(data_dir):
    src = open_source("digits", data_dir)
    pipe = Pipeline(src, digits_config(64))  # 23 steps per epoch: step 30 is inside epoch 2
    from_start = pipe.train_batches(0)
    reference = [next(from_start) for _ in range(34)][30:]
    resumed = pipe.train_batches(30)
    for ref in reference:
        np.testing.assert_array_equal(next(resumed)["label"], ref["label"])


def test_epochs_are_different_permutations(data_dir):
    src = open_source("digits", data_dir)
    pipe = Pipeline(src, digits_config(1497 // 3))
    e0 = np.concatenate([b["label"] for b in pipe.train_epoch(0).as_numpy_iterator()])
    e1 = np.concatenate([b["label"] for b in pipe.train_epoch(1).as_numpy_iterator()])
    assert len(e0) == len(e1) == 1497 and not np.array_equal(e0, e1)
    assert np.array_equal(np.bincount(e0), np.bincount(e1))


def test_pipelines_run_without_tf_datas_autotuner(data_dir):
    """Deleting an autotuned iterator waits for the tuner's thread to wake, up to a minute: a stall at
    every epoch's and evaluation's end. No pipeline has one, and each stays deterministic."""
    pipe = Pipeline(open_source("digits", data_dir), digits_config(64))
    for ds in (pipe.train_epoch(0), pipe.eval_dataset(64)):
        assert ds.options().autotune.enabled is False and ds.options().deterministic is True


def test_map_parallelism_is_the_configured_number_or_one_per_core(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert (map_parallelism(-1), map_parallelism(4), map_parallelism(1)) == (3, 4, 1)


def test_batch_larger_than_dataset_is_refused(data_dir):
    src = open_source("digits", data_dir)
    with pytest.raises(UserError, match="larger than the 1497 training examples"):
        next(Pipeline(src, digits_config(2048)).train_batches(0))


def test_image_folder_and_missing_data(tmp_path):
    from PIL import Image

    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            d = tmp_path / "folder" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((40, 30, 3), 40 * i, np.uint8)).save(d / f"{i}.jpg")
    src = open_source(str(tmp_path / "folder"))
    assert (src.num_train, src.num_eval, src.num_classes, src.eval_split) == (6, 4, 2, "val")
    with pytest.raises(UserError, match="has no train/ subfolder"):
        open_source(str(tmp_path / "folder" / "train" / "cat"))
    with pytest.raises(UserError, match="does not exist"):
        open_source(str(tmp_path / "nowhere") + "/")
    with pytest.raises(UserError, match=r"ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar.*downloads/manual"):
        open_source("imagenet2012", str(tmp_path / "tfds"))
    with pytest.raises(UserError, match="Unknown dataset 'mnits'.*'mnist'"):
        open_source("mnits", str(tmp_path / "tfds"))


def _folder_with_a_corrupt_image(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("a", "b"):
            d = tmp_path / "imgs" / split / cls
            d.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(np.full((36, 36, 3), 30 * i, np.uint8)).save(d / f"{i}.jpg")
    bad = tmp_path / "imgs" / "train" / "b" / "2.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    return tmp_path / "imgs", bad


def test_corrupt_image_is_named_or_skipped(tmp_path):
    folder, bad = _folder_with_a_corrupt_image(tmp_path)
    src = open_source(str(folder))
    config = digits_config(4, recipe="none", image_size=32, cache=False)
    with pytest.raises(UserError, match=f"Image {bad} cannot be decoded.*skip_corrupt=True"):
        list(zip(range(4), Pipeline(src, config).train_batches(0)))
    config.data.skip_corrupt = True
    # 7 decodable images of 8: the epoch's two batches of 4 shrink to one (the remainder is dropped).
    batches = list(Pipeline(src, config).train_epoch(0).as_numpy_iterator())
    assert [b["image"].shape for b in batches] == [(4, 32, 32, 3)]


def test_bench_data_measures_each_recipe(tmp_path, capsys):
    from conftest import run_cli

    code, out, _ = run_cli(
        [
            "bench-data",
            "--recipe",
            "resnet",
            "inception",
            "--images",
            "40",
            "--folder",
            tmp_path / "jpegs",
            "--batch-size",
            "8",
            "--batches",
            "2",
            "--size",
            "64",
        ],
        capsys,
    )
    import json

    r = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and set(r["img_per_s"]) == {"resnet", "inception"} and min(r["img_per_s"].values()) > 0
    assert set(r["img_per_cpu_s"]) == set(r["img_per_s"]) and min(r["img_per_cpu_s"].values()) > 0
    assert len(list((tmp_path / "jpegs" / "train").glob("*/*.jpg"))) == 40
