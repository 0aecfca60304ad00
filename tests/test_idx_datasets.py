"""`mnist` and `fashion_mnist` from local IDX files: TFDS's own split names, counts and
features; LeNet-5 trained and evaluated on them through the CLI; one-sentence errors for
missing and damaged files; and one-channel images under the CIFAR recipe's per-channel
normalisation. The tests write their own small IDX files, so no package is needed."""

import gzip
import importlib.util
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import ROOT, run_cli

from cnn_jax.config import base_config
from cnn_jax.data.datasets import open_source
from cnn_jax.data.idx.idx_files import ALL_FILES, parse_idx
from cnn_jax.data.pipeline import Pipeline
from cnn_jax.data.recipes import for_channels, get_recipe
from cnn_jax.errors import UserError
from cnn_jax.train.loop import train_and_evaluate

NUM_TRAIN, NUM_TEST = 64, 32


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 0, 0, 0x08, ndim, big-endian int32 dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def split_arrays(num: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (num, 28, 28), np.uint8), (np.arange(num) % 10).astype(np.uint8)


def write_idx_folder(folder, gzipped: bool = True) -> dict:
    """The four files of a 64-train / 32-test dataset in `folder`; returns {stem: array}."""
    folder.mkdir(parents=True, exist_ok=True)
    train, test = split_arrays(NUM_TRAIN, 0), split_arrays(NUM_TEST, 1)
    arrays = dict(zip(ALL_FILES, (*train, *test)))
    for stem, array in arrays.items():
        data = idx_bytes(array)
        (folder / (f"{stem}.gz" if gzipped else stem)).write_bytes(gzip.compress(data) if gzipped else data)
    return arrays


def examples(builder, split: str) -> list:
    """(label, image bytes) of a split, sorted: TFDS shuffles the order when it writes. Read by
    position: the split is prepared as ArrayRecord."""
    return sorted((int(ex["label"]), ex["image"].tobytes()) for ex in builder.as_data_source(split))


def expected(arrays: dict, images: str, labels: str) -> list:
    return sorted((int(y), x[..., None].tobytes()) for x, y in zip(arrays[images], arrays[labels]))


@pytest.mark.parametrize("name,gzipped", [("fashion_mnist", True), ("mnist", False)])
def test_idx_files_read_through_tfds_own_builder(tmp_path, name, gzipped):
    arrays = write_idx_folder(tmp_path / "idx", gzipped)
    source = open_source(name, str(tmp_path / "tfds"), idx_dir=str(tmp_path / "idx"))
    assert (source.train_split, source.eval_split) == ("train", "test")
    assert (source.num_train, source.num_eval, source.num_classes) == (NUM_TRAIN, NUM_TEST, 10)
    assert source.image_shape == (28, 28, 1)
    features = source.builder.info.features
    assert set(features) == {"image", "label"} and features["image"].dtype == np.uint8
    # Served by TFDS's own class, at TFDS's version, from where a download would have put it.
    assert type(source.builder) is tfds.builder_cls(name)
    assert (tmp_path / "tfds" / name / str(source.builder.version)).is_dir()
    assert examples(source.builder, "train") == expected(arrays, *ALL_FILES[:2])
    assert examples(source.builder, "test") == expected(arrays, *ALL_FILES[2:])


def test_parse_idx_reads_header_dims_and_data(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(array), tmp_path / "x", ndim=3), array)


def one_error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # beside library logs
    assert len(errors) == 1
    return errors[0]


def test_missing_files_stop_the_cli_with_one_sentence(tmp_path, capsys):
    empty = tmp_path / "idx"
    empty.mkdir()
    code, _, err = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py:fashion",
            f"--config.data.idx_dir={empty}",
            f"--config.data_dir={tmp_path / 'tfds'}",
            "--workdir",
            tmp_path / "w",
        ],
        capsys,
    )
    line = one_error_line(err)
    assert code == 2
    for stem in ALL_FILES:
        assert stem in line
    assert "apt-get install dataset-fashion-mnist" in line and "--config.data.idx_dir" in line


def test_mnist_without_idx_dir_names_the_config_key(tmp_path):
    with pytest.raises(UserError, match=r"data\.idx_dir is empty; put the four files") as e:
        open_source("mnist", str(tmp_path / "tfds"))
    assert "apt-get" not in str(e.value)


@pytest.mark.parametrize("damage", ["truncated_gzip", "short_data", "not_idx"])
def test_damaged_file_is_named_in_one_sentence(tmp_path, damage):
    folder = tmp_path / "idx"
    write_idx_folder(folder, gzipped=damage == "truncated_gzip")
    stem = "t10k-images-idx3-ubyte"
    path = folder / (f"{stem}.gz" if damage == "truncated_gzip" else stem)
    data = path.read_bytes()
    path.write_bytes(
        {"truncated_gzip": data[: len(data) // 2], "short_data": data[:-28], "not_idx": b"PK\x03\x04" + data[4:]}[
            damage
        ]
    )
    with pytest.raises(UserError, match=rf"IDX file .*{stem}.* is corrupt or truncated") as e:
        open_source("fashion_mnist", str(tmp_path / "tfds"), idx_dir=str(folder))
    assert "\n" not in str(e.value) and str(e.value).endswith("replace it with an intact copy of the file.")
    assert not tfds.builder("fashion_mnist", data_dir=str(tmp_path / "tfds")).is_prepared()


def test_lenet5_fashion_trains_and_evaluates_every_test_image(tmp_path, capsys):
    write_idx_folder(tmp_path / "idx")
    workdir = tmp_path / "w"
    code, _, err = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py:fashion",
            f"--config.data.idx_dir={tmp_path / 'idx'}",
            f"--config.data_dir={tmp_path / 'tfds'}",
            "--config.num_train_steps=4",
            "--config.progress_bar=False",
            "--workdir",
            workdir,
        ],
        capsys,
    )
    assert code == 0, err
    results = json.loads((workdir / "results.json").read_text())
    assert results["dataset"] == "fashion_mnist" and results["status"] == "completed"
    assert results["eval_examples"] == NUM_TEST and results["input_size"] == 32
    assert np.isfinite(results["top1"])


def test_lenet5_fashion_pads_28_into_32_without_scaling():
    image = np.random.default_rng(0).integers(0, 256, (28, 28, 1), np.uint8)
    out = np.asarray(get_recipe("mnist").eval(image, 32))
    assert out.shape == (32, 32, 1)
    np.testing.assert_allclose(out[2:30, 2:30], image / 255.0, atol=1e-6)
    assert not out[:2].any() and not out[30:].any() and not out[:, :2].any() and not out[:, 30:].any()


def pipeline_for(config, name, tmp_path):
    write_idx_folder(tmp_path / "idx")
    config.data_dir, config.data.idx_dir = str(tmp_path / "tfds"), str(tmp_path / "idx")
    return Pipeline(open_source(name, config.data_dir, idx_dir=config.data.idx_dir), config)


def test_cifar_recipe_on_one_channel_uses_the_datasets_own_statistics(tmp_path):
    # The recipe's RGB mean/std must not broadcast a one-channel image to three channels: the
    # model is built for one, and the first step would fail (flax's ScopeParamShapeError).
    config = base_config()
    config.data.update(recipe="cifar", image_size=28, channels=1)
    config.batch_size = 16
    pipeline = pipeline_for(config, "fashion_mnist", tmp_path)
    batch = next(pipeline.train_batches())
    assert batch["image"].shape == (16, 28, 28, 1)
    image = np.full((28, 28, 1), 255 * 0.2860, np.float32)  # Fashion-MNIST's train mean maps to 0
    np.testing.assert_allclose(np.asarray(pipeline.recipe.eval(image, 28)), 0.0, atol=1e-5)
    eval_batch = next(pipeline.eval_batches(16))
    assert eval_batch["image"].shape == (16, 28, 28, 1)


def test_per_channel_normalisations_match_the_channel_count():
    gray = np.full((4, 4, 1), 255 * 0.1307, np.float32)
    np.testing.assert_allclose(for_channels(get_recipe("cifar"), 1, "mnist").normalize(gray), 0.0, atol=1e-5)
    caffe = for_channels(get_recipe("resnet"), 1, "mnist").normalize(gray)
    assert caffe.shape == (4, 4, 1) and np.allclose(caffe, 0.0, atol=1e-3)
    unknown = for_channels(get_recipe("cifar"), 1, "some/folder").normalize(gray)
    assert unknown.shape == (4, 4, 1)
    rgb = get_recipe("cifar")
    assert for_channels(rgb, 3, "mnist") is rgb and for_channels(get_recipe("digits"), 1, "mnist").channel_stats == ()


def test_resnet20_cifar_recipe_trains_on_one_channel(tmp_path):
    spec = importlib.util.spec_from_file_location("resnet_cifar_config", ROOT / "configs" / "resnet_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("depth=20,fashion")
    assert (config.dataset, config.data.channels, config.data.recipe) == ("fashion_mnist", 1, "cifar")
    config.batch_size, config.num_train_steps, config.progress_bar = 16, 2, False
    write_idx_folder(tmp_path / "idx")
    config.data_dir, config.data.idx_dir = str(tmp_path / "tfds"), str(tmp_path / "idx")
    result = train_and_evaluate(config, tmp_path / "w")
    assert result["eval_examples"] == NUM_TEST and np.isfinite(result["top1"])
