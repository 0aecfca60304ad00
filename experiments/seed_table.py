"""The Keras comparison table: the eight ImageNet models of the Keras Applications table,
each trained with its paper's recipe (configs/), next to the accuracy of the Keras weights.

Published numbers are the Keras column of the architecture reference file (`keras_top1`/
`keras_top5` in cnn_jax/models/reference.json; from the keras-applications README:
single centre crop on the 50k ILSVRC-2012 validation images, 224 px, 299 px for the
Inception models), so they compare directly with our centre-crop evaluation. They are not
the papers' numbers: those used 10-crop or dense evaluation (experiments/imagenet_classic.py).
Keras ResNet50 is ResNet v1 (stride in the first 1x1), our `resnet50`.

Needs ImageNet (`imagenet2012` prepared in TFDS's data_dir from the manual download);
cannot run offline.

    cnn-jax reproduce experiments/seed_table.py --workdir runs/seed_table
"""

_SOURCE = "Keras Applications (keras-applications README), single centre crop, ILSVRC-2012 val"


def _keras(size: int) -> dict:
    """How the Keras weights were evaluated: one centre crop of `size` px on all 50k val images."""
    return {"protocol": "center", "input_size": size, "split": "validation", "dataset": "imagenet2012", "models": 1}


ENTRIES = [
    {
        "name": "vgg16",
        "config": "configs/vgg.py:D",
        "published": {"top1": 71.268, "top5": 90.050, "source": _SOURCE + ", 224 px", **_keras(224)},
    },
    {
        "name": "vgg19",
        "config": "configs/vgg.py:E",
        "published": {"top1": 71.256, "top5": 89.988, "source": _SOURCE + ", 224 px", **_keras(224)},
    },
    {
        "name": "resnet50",
        "config": "configs/resnet.py:depth=50",
        "published": {
            "top1": 74.704,
            "top5": 92.020,
            "source": _SOURCE + ", 224 px (keras.io rounds 74.9/92.1)",
            **_keras(224),
        },
    },
    {
        "name": "inception_v3",
        "config": "configs/inception_v3.py",
        "published": {"top1": 77.898, "top5": 93.720, "source": _SOURCE + ", 299 px", **_keras(299)},
    },
    {
        "name": "inception_resnet_v2",
        "config": "configs/inception_resnet_v2.py",
        "published": {"top1": 80.256, "top5": 95.252, "source": _SOURCE + ", 299 px", **_keras(299)},
    },
    {
        "name": "densenet121",
        "config": "configs/densenet.py:depth=121",
        "published": {"top1": 74.520, "top5": 91.978, "source": _SOURCE + ", 224 px", **_keras(224)},
    },
    {
        "name": "densenet169",
        "config": "configs/densenet.py:depth=169",
        "published": {"top1": 76.074, "top5": 93.108, "source": _SOURCE + ", 224 px", **_keras(224)},
    },
    {
        "name": "densenet201",
        "config": "configs/densenet.py:depth=201",
        "published": {"top1": 77.064, "top5": 93.458, "source": _SOURCE + ", 224 px", **_keras(224)},
    },
]
