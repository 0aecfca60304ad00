"""`cnn-jax eval --weights` on a Keras `.weights.h5`: scored with Keras's own preprocessing.

Keras's ResNet50 (random weights, 10 classes, the classifier's bias centring the logits
over the test images) predicts on crops normalised by Keras's own
`keras.applications.resnet50.preprocess_input` ("caffe": BGR, minus the BGR means); the
folder is built from those predictions as in test_eval_weights, so top-1 must be 1/2.
"""

import json

import numpy as np
import pytest
from conftest import run_cli
from test_eval_weights import CLASSES, folder_from_predictions, smooth_images, top5_and_loss
from test_keras_import import random_keras  # noqa: I001  (sets KERAS_BACKEND first)

from cnn_jax.data import augment as A


@pytest.mark.slow
def test_keras_resnet50_scored_with_kerass_caffe_preprocessing(tmp_path, capsys):
    from keras.applications.resnet50 import preprocess_input

    model = random_keras("resnet50", classes=CLASSES)
    images = smooth_images(np.random.default_rng(0), 8)
    crops = np.stack([A.center_crop(A.resize_shorter_side(im, 256), 224).numpy() for im in images])
    inputs = preprocess_input(crops.copy())
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias - model.predict(inputs, verbose=0).mean(axis=0)])
    logits = model.predict(inputs, verbose=0)
    predicted = logits.argmax(axis=1)
    assert len(set(predicted)) > 1
    model.save_weights(tmp_path / "r50.weights.h5")
    folder, labels = folder_from_predictions(tmp_path / "folder", images, predicted)
    code, _, err = run_cli(
        [
            "eval",
            "--weights",
            tmp_path / "r50.weights.h5",
            "--model",
            "resnet50",
            "--data",
            folder,
            "--out",
            tmp_path / "out",
            "--batch-size",
            8,
        ],
        capsys,
    )
    assert code == 0, err
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    top5, loss = top5_and_loss(logits, labels)
    assert (r["top1"], r["top5"], r["count"]) == (0.5, top5, 8)
    assert r["loss"] == pytest.approx(loss, rel=1e-4)
    p = r["preprocessing"]
    assert (p["source"], p["keras_mode"], p["channel_order"], p["mean"], p["resize"]) == (
        "keras",
        "caffe",
        "BGR",
        [103.939, 116.779, 123.68],
        "shorter side to 256",
    )
