"""Per-channel statistics for the mean/std normalisations at the image's channel count.

The `imagenet` (mean/std) and `caffe` (mean) normalisations hold three-channel RGB
statistics. A one-channel image normalised with them would be broadcast to three
channels after the model was built for one. For one channel we use the dataset's
own grayscale statistics where we know them (train split, [0, 1] scale), and for
any other dataset ImageNet's statistics taken to gray with the ITU-R 601 luma
weights that `rgb_to_grayscale` uses (the std so obtained is an approximation,
close enough for a normalisation).
"""

import numpy as np

from cnn_jax.data.augment import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

# Normalisations whose statistics are per channel; the others do not depend on it.
PER_CHANNEL = ("imagenet", "caffe")
LUMA_RGB = (0.299, 0.587, 0.114)
# (mean, std) of the train split's pixels on the [0, 1] scale.
GRAYSCALE_STATS = {
    "fashion_mnist": (0.2860, 0.3530),
    "mnist": (0.1307, 0.3081),
}
IMAGENET_GRAY = (float(np.dot(LUMA_RGB, IMAGENET_MEAN_RGB)), float(np.dot(LUMA_RGB, IMAGENET_STD_RGB)))


def grayscale_stats(dataset: str) -> tuple:
    """(mean, std) on the [0, 1] scale for a one-channel image of `dataset`."""
    return GRAYSCALE_STATS.get(dataset, IMAGENET_GRAY)
