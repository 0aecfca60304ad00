"""`digits`: scikit-learn's bundled handwritten digits as a TFDS dataset, built offline.

1,797 grayscale 8x8 images of the digits 0-9 (UCI "Optical Recognition of
Handwritten Digits", 43 writers), upsampled to 28x28 (bilinear) and padded to
32x32, the way LeNet-5 saw MNIST's 28x28 digits in a 32x32 field.

Fixed split, by position in scikit-learn's order: every sixth image (index
0, 6, 12, ...) is a test image (300), the other 1,497 train. Interleaving puts
every writer in both splits, as MNIST's own split does for its writer pools;
scikit-learn's order groups images by writer, so a head/tail split would test
unseen writers only (an SVM drops from 99% to 95% there).
"""

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

TEST_EVERY = 6
IMAGE_SIZE = 32
_DIGIT_SIZE = 28


def upsample(image8x8: np.ndarray) -> np.ndarray:
    """(8, 8) values 0..16 -> (32, 32, 1) uint8: 28x28 bilinear, 2-pixel border."""
    gray = Image.fromarray(np.round(image8x8 * 255.0 / 16.0).astype(np.uint8))
    digit = np.asarray(gray.resize((_DIGIT_SIZE, _DIGIT_SIZE), Image.BILINEAR))
    border = (IMAGE_SIZE - _DIGIT_SIZE) // 2
    return np.pad(digit, border)[..., None]


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 1,797 handwritten digits at 32x32: 1,497 train, 300 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "8x8 -> 28x28 bilinear, padded to 32x32; every sixth image is a test image."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        )

    def _split_generators(self, dl_manager):
        from sklearn.datasets import load_digits  # ships its data: no download

        d = load_digits()
        is_test = np.arange(len(d.target)) % TEST_EVERY == 0
        return {
            "train": self._generate_examples(d.images, d.target, np.flatnonzero(~is_test)),
            "test": self._generate_examples(d.images, d.target, np.flatnonzero(is_test)),
        }

    def _generate_examples(self, images, labels, indices):
        for i in indices:
            yield int(i), {"image": upsample(images[i]), "label": int(labels[i])}
