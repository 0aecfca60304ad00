"""`cnn-jax eval --weights`: imported weights scored on a dataset with their source's
preprocessing, recorded in results.json.

The weights are a torchvision ResNet-18 state dict (torchvision's names and shapes, random
values scaled like a trained net's, the classifier's bias set to centre the logits over
the test images: a random net otherwise predicts one class for every image) in a
`.safetensors` file. The folder is built from the
network's own predictions, computed directly (TF resize of the shorter side to 256, centre
224 crop, ImageNet mean/std in numpy): every even image sits in its predicted class, every
odd one in the next class, so top-1 must be exactly 1/2, and any other preprocessing would
move some predictions.
"""

import json

import jax
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from test_torch_import import random_state, resnet_keys, save_safetensors
from test_torch_logits import trained_like

from cnn_jax.data import augment as A
from cnn_jax.errors import UserError
from cnn_jax.weights import source_preprocessing as sp
from cnn_jax.weights.keras_import import supported_models as keras_models

CLASSES = 10
IMAGES = 16


def smooth_images(rng, count: int) -> list:
    """uint8 RGB images of assorted sizes with structure at several scales (not white noise)."""
    images = []
    for _ in range(count):
        h, w = rng.integers(150, 330, size=2)
        coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((int(w), int(h)), Image.BILINEAR), np.float32)
        images.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return images


def torchvision_input(image: np.ndarray) -> np.ndarray:
    """torchvision's ResNet eval transform, written out: 256 shorter side, centre 224, mean/std."""
    x = A.center_crop(A.resize_shorter_side(image, 256), 224).numpy() / 255.0
    return ((x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])).astype(np.float32)


def folder_from_predictions(root, images: list, predicted: np.ndarray):
    """An image folder whose val/ puts even images in their predicted class and odd ones in the
    next (top-1 exactly 1/2); train/ holds every class, so the labels are 0-9 in this order."""
    labels = np.where(np.arange(len(images)) % 2 == 0, predicted, (predicted + 1) % CLASSES)
    for c in range(CLASSES):
        (root / "train" / f"c{c}").mkdir(parents=True)
        Image.fromarray(images[c % len(images)]).save(root / "train" / f"c{c}" / "0.png")
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / "val" / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "val" / f"c{label}" / f"{i}.png")
    return root, labels


def top5_and_loss(logits: np.ndarray, labels: np.ndarray) -> tuple:
    top5 = np.mean([label in np.argsort(-row)[:5] for row, label in zip(logits, labels)])
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return top5, -log_p[np.arange(len(labels)), labels].mean()


def test_torchvision_weights_scored_with_torchvisions_preprocessing(tmp_path, capsys):
    from cnn_jax.weights.torch_import import load_torchvision_weights

    state = trained_like(random_state(resnet_keys((2, 2, 2, 2), False, CLASSES)))
    images = smooth_images(np.random.default_rng(0), IMAGES)
    inputs = np.stack([torchvision_input(im) for im in images])
    module, variables = load_torchvision_weights("resnet18", state)
    apply = jax.jit(lambda v, x: module.apply(v, x, train=False))
    state["fc.bias"] = state["fc.bias"] - np.asarray(apply(variables, inputs)).mean(axis=0)
    weights = save_safetensors(state, tmp_path / "resnet18.safetensors")
    logits = np.asarray(apply(load_torchvision_weights("resnet18", weights)[1], inputs))
    predicted = logits.argmax(axis=1)
    assert len(set(predicted)) > 1  # the predictions depend on the image
    folder, labels = folder_from_predictions(tmp_path / "folder", images, predicted)
    code, out, err = run_cli(
        [
            "eval",
            "--weights",
            weights,
            "--model",
            "resnet18",
            "--data",
            folder,
            "--out",
            tmp_path / "out",
            "--batch-size",
            6,
        ],
        capsys,
    )
    assert code == 0, err
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    top5, loss = top5_and_loss(logits, labels)
    assert (r["top1"], r["count"], r["split"], r["num_classes"]) == (0.5, IMAGES, "val", CLASSES)
    assert r["top5"] == top5 and r["top5"] > 0.5
    assert r["loss"] == pytest.approx(loss, rel=1e-5)
    assert r["preprocessing"] == {
        "source": "torchvision",
        "resize": "shorter side to 256",
        "crop": "centre 224x224",
        "interpolation": "bilinear, antialiased",
        "normalization": "imagenet",
        "keras_mode": "torch",
        "pixel_scale": "[0, 1]",
        "channel_order": "RGB",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert "top-1 50.00%" in out and r["weights"] == str(weights) and r["model"] == "resnet18"
    # `features --weights` reads the same way: layer fc's output is the logits, rows in the
    # folder's (shuffled, fixed) order, each beside its label.
    code, _, err = run_cli(
        [
            "features",
            "--weights",
            weights,
            "--model",
            "resnet18",
            "--data",
            folder,
            "--split",
            "val",
            "--layer",
            "fc",
            "--out",
            tmp_path / "f.npy",
            "--batch-size",
            6,
        ],
        capsys,
    )
    assert code == 0, err
    feats, feat_labels = np.load(tmp_path / "f.npy"), np.load(tmp_path / "f_labels.npy")
    order = [int(np.abs(logits - row).max(axis=1).argmin()) for row in feats]
    assert sorted(order) == list(range(IMAGES))
    np.testing.assert_allclose(feats, logits[order], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(feat_labels, labels[order])


def test_each_source_and_model_gets_its_preprocessing():
    assert set(sp.KERAS_NORMALIZATION) == set(keras_models())
    cases = {
        ("keras", "vgg16", 224): ("caffe", "shorter side to 256", "BGR", [103.939, 116.779, 123.68]),
        ("keras", "xception", 299): ("inception", "shorter side to 342", "RGB", [0.5] * 3),
        ("keras", "densenet121", 224): ("imagenet", "shorter side to 256", "RGB", [0.485, 0.456, 0.406]),
        ("torchvision", "inception_v3", 299): ("inception", "shorter side to 342", "RGB", [0.5] * 3),
        ("torchvision", "googlenet_tv", 224): ("inception", "shorter side to 256", "RGB", [0.5] * 3),
        ("torchvision", "densenet121", 224): ("imagenet", "shorter side to 256", "RGB", [0.485, 0.456, 0.406]),
    }
    make = {"keras": sp.for_keras, "torchvision": sp.for_torchvision}
    for (source, model, size), (norm, resize, order, mean) in cases.items():
        r = make[source](model, size).record()
        assert (r["normalization"], r["resize"], r["channel_order"], r["mean"]) == (norm, resize, order, mean)
        assert r["crop"] == f"centre {size}x{size}"
    assert "transform_input" in sp.for_torchvision("inception_v3", 299).record()["note"]
    # An override replaces the default, e.g. for weights trained with transform_input=False.
    override = sp.for_torchvision("googlenet_tv", 224, "imagenet")
    assert override.record()["normalization"] == "imagenet" and not override.note
    x = np.full((300, 400, 3), 255, np.uint8)
    assert np.allclose(sp.for_keras("vgg16", 224)(x).numpy()[0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68])
    with pytest.raises(UserError, match="Normalization 'caffee' is unknown.*'caffe'"):
        sp.for_keras("vgg16", 224, "caffee")


def test_bad_eval_requests_are_one_sentence(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")
    for args, message in (
        ([], "Pass --data"),
        (["--data", "digits", "--model", ""], "Pass --model NAME"),
        (["--data", "digits", "--model", "lenet5"], "no torchvision counterpart"),
        (["--protocol", "10crop"], "evaluates one centre crop"),
    ):
        code, _, err = run_cli(["eval", "--weights", weights, "--out", tmp_path / "o", *args], capsys)
        assert code == 2 and message in err, err
    code, _, err = run_cli(
        ["eval", "--weights", tmp_path / "none.h5", "--model", "vgg16", "--data", "digits", "--out", tmp_path / "o"],
        capsys,
    )
    assert code == 2 and "do not exist" in err
