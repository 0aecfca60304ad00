"""data.skip_corrupt: undecodable images are counted per split, the epoch length and the
evaluation follow the decodable ones, and results.json and the log report the count."""

import json

import numpy as np

from cnn_jax.config import base_config
from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline


def _folder(root, corrupt_train=2, corrupt_val=1):
    """Image folder with 8 train and 4 val JPEGs (two classes); the first few truncated."""
    from PIL import Image

    for split, n, n_bad in (("train", 4, corrupt_train), ("val", 2, corrupt_val)):
        for cls in ("a", "b"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((36, 36, 3), 40 * i + (cls == "b") * 100, np.uint8)).save(d / f"{i}.jpg")
        for path in sorted((root / split).glob("*/*.jpg"))[:n_bad]:
            path.write_bytes(path.read_bytes()[:40])
    return root


def _config(batch, skip=True):
    c = base_config()
    c.batch_size = batch
    c.data.update(recipe="none", image_size=32, cache=False, skip_corrupt=skip)
    return c


def test_counts_per_split_and_sizes_follow_the_decodable_images(tmp_path):
    src = open_source(str(_folder(tmp_path / "imgs")))
    pipe = Pipeline(src, _config(2))
    assert pipe.skipped_corrupt() == {"train": 2, "val": 1}
    assert pipe.num_train == 6  # 3 steps of 2 per epoch, none short
    assert [b["image"].shape[0] for b in pipe.train_epoch(0).as_numpy_iterator()] == [2, 2, 2]
    # Evaluation pads the 3 decodable val images to whole batches and counts each once.
    mask = np.concatenate([b["mask"] for b in pipe.eval_batches(2)])
    assert mask.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert Pipeline(src, _config(2, skip=False)).skipped_corrupt() == {"train": 0, "val": 0}


def test_results_json_and_log_report_the_skipped_images(tmp_path, capsys):
    from conftest import run_cli

    folder = _folder(tmp_path / "imgs")
    wd = tmp_path / "run"
    code, _, err = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py",
            "--config.dataset",
            folder,
            "--config.data.recipe=none",
            "--config.data.skip_corrupt=True",
            "--config.batch_size=2",
            "--config.num_train_steps=3",
            "--config.log_every_steps=3",
            "--num-devices",
            "1",
            "--workdir",
            wd,
        ],
        capsys,
    )
    assert code == 0, err
    results = json.loads((wd / "results.json").read_text())
    assert results["skipped_corrupt"] == {"train": 2, "val": 1}
    assert results["eval_examples"] == 3 and results["epochs"] == 1.0  # 6 decodable: 3 steps of 2
    log = (wd / "train.log").read_text()
    assert "skipped 2 undecodable image(s) of 8 in split 'train'" in log
    assert "skipped 1 undecodable image(s) of 4 in split 'val'" in log
