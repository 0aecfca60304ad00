"""Transfer learning: a digits LeNet-5 fine-tuned on a 5-class image folder."""

import json

import numpy as np
from conftest import run_cli
from helpers import final_params
from PIL import Image


def _five_class_folder(root):
    from sklearn.datasets import load_digits

    from cnn_jax.data.digits.digits import upsample

    d = load_digits()
    for i, (image, label) in enumerate(zip(d.images, d.target)):
        if label >= 5 or i >= 600:
            continue
        split = "val" if i % 5 == 0 else "train"
        folder = root / split / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(upsample(image)[..., 0]).convert("RGB").save(folder / f"{i}.png")
    return root


def test_feature_extraction_freezes_the_backbone_bit_for_bit(tmp_path, data_dir, capsys):
    src = tmp_path / "digits10"
    assert (
        run_cli(
            [
                "train",
                "--config",
                "configs/lenet5.py:head=softmax",
                "--config.num_train_steps=300",
                "--config.optimizer.lr=0.01",
                "--config.log_every_steps=100",
                "--config.eval_every_steps=300",
                "--workdir",
                src,
            ],
            capsys,
        )[0]
        == 0
    )
    folder = _five_class_folder(tmp_path / "five")
    dst = tmp_path / "five_run"
    code, _, err = run_cli(
        [
            "train",
            "--config",
            f"configs/transfer.py:from={src},data={folder},mode=features",
            "--config.num_train_steps=30",
            "--config.log_every_steps=10",
            "--workdir",
            dst,
        ],
        capsys,
    )
    assert code == 0, err
    assert "12 parameter arrays loaded, 2 replaced" in err and "output/kernel" in err
    before, after = final_params(src), final_params(dst)
    for layer in ("C1", "S2", "C3", "S4", "C5", "F6"):
        for name in before[layer]:
            np.testing.assert_array_equal(after[layer][name], before[layer][name])
    assert after["output"]["kernel"].shape == (84, 5)
    res = json.loads((dst / "results.json").read_text())
    assert res["eval_examples"] == len(list((folder / "val").glob("*/*.png")))
    assert res["top1"] > 0.8  # a frozen digits backbone (~90% on 10 classes) separates five digits
