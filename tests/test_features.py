"""`cnn-jax features`: a named layer's output over a split, in dataset order, for a linear probe.

A LeNet-5 trained for 4 steps on `digits`; its features of the 300 test images are
compared with a capture through flax's own `capture_intermediates` on images read
straight from TFDS and scaled as the digits recipe says (x / 255 at 32x32).
"""

import json

import numpy as np
import pytest
from conftest import run_cli
from helpers import final_params


@pytest.fixture(scope="module")
def lenet_workdir(tmp_path_factory, data_dir, root):
    wd = tmp_path_factory.mktemp("features") / "wd"
    code, _, _ = run_cli(
        [
            "train",
            "--config",
            f"{root}/configs/lenet5.py",
            "--config.num_train_steps=4",
            "--config.checkpoint_every_steps=4",
            "--config.eval_every_steps=4",
            "--workdir",
            wd,
        ]
    )
    assert code == 0
    return wd


def digits_test_split(data_dir):
    import tensorflow_datasets as tfds

    import cnn_jax.data.digits  # noqa: F401  (registers the builder)

    builder = tfds.builder("digits", data_dir=data_dir)
    builder.download_and_prepare()
    # In stored order, by position (ArrayRecord, which this TFDS reads through a data source).
    images, labels = zip(*((ex["image"], ex["label"]) for ex in builder.as_data_source("test")))
    return np.stack(images).astype(np.float32) / 255.0, np.array(labels)


def direct_capture(workdir, images, layer: str):
    from cnn_jax import models
    from cnn_jax.train.evaluate import load_workdir_config

    config = load_workdir_config(workdir)
    model = models.create_model(config.model, num_classes=10, **config.model_kwargs)
    _, state = model.apply(
        {"params": final_params(workdir)}, images, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
    return np.asarray(state["intermediates"][layer]["__call__"][0])


def test_features_equal_a_direct_capture_in_dataset_order(lenet_workdir, data_dir, tmp_path, capsys):
    images, labels = digits_test_split(data_dir)
    c3 = direct_capture(lenet_workdir, images, "C3")
    assert images.shape == (300, 32, 32, 1) and c3.shape == (300, 10, 10, 16)
    common = ["features", "--workdir", lenet_workdir, "--layer", "C3", "--split", "test", "--batch-size", 128]
    code, out, err = run_cli(common + ["--out", tmp_path / "avg.npy"], capsys)
    assert code == 0, err
    assert "300 x 16 features of digits/test" in out
    feats = np.load(tmp_path / "avg.npy")
    assert feats.shape == (300, 16) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, c3.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "avg_labels.npy"), labels)
    code, _, err = run_cli(common + ["--pool", "flatten", "--out", tmp_path / "flat.npy"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "flat.npy"), c3.reshape(300, -1), rtol=1e-5, atol=1e-6)
    code, _, err = run_cli(
        ["features", "--workdir", lenet_workdir, "--layer", "F6", "--out", tmp_path / "f6.npy"], capsys
    )  # default split: digits' test; a vector layer as it is
    assert code == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "f6.npy"), direct_capture(lenet_workdir, images, "F6"), rtol=1e-5, atol=1e-6
    )


def test_eval_weights_of_a_workdir_equals_its_own_evaluation(lenet_workdir, tmp_path, capsys):
    # `eval --weights` takes a workdir too (here on its own data, recipe and best step).
    code, _, err = run_cli(["eval", "--weights", lenet_workdir, "--out", tmp_path], capsys)
    assert code == 0, err
    r = json.loads((tmp_path / "results.json").read_text())
    own = json.loads((lenet_workdir / "results.json").read_text())
    assert (r["top1"], r["top5"], r["count"]) == (own["top1"], own["top5"], 300)
    assert r["preprocessing"]["source"] == "cnn_jax" and r["preprocessing"]["resize"] == "whole image to 32"


def test_bad_requests_are_one_sentence(lenet_workdir, tmp_path, capsys):
    out = tmp_path / "x.npy"
    code, _, err = run_cli(["features", "--workdir", lenet_workdir, "--layer", "C33", "--out", out], capsys)
    assert code == 2 and not out.exists()
    last = err.strip().splitlines()[-1]  # the sentence, after the log lines of loading the run
    assert last.startswith("error: Layer 'C33' is not a layer") and "'C3'" in last
    for args, message in (
        (["--weights", "w.safetensors"], "not both or neither"),
        (["--out", tmp_path / "x.txt"], "must name a .npy file"),
    ):
        code, _, err = run_cli(["features", "--workdir", lenet_workdir, "--layer", "C3", "--out", out, *args], capsys)
        assert code == 2 and message in err
