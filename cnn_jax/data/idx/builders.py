"""TFDS's own `mnist` and `fashion_mnist` builders, fed from local IDX files.

Each class below subclasses TFDS's builder and replaces only `_split_generators`:
where TFDS downloads the four files, these read them from a folder. Everything else
is TFDS's: name, version, features (`image` 28x28x1 uint8, `label` with 10 classes),
split names (`train`, `test`), description and citation. So the prepared dataset is
the one a download would give, in the same place (`data_dir/fashion_mnist/3.0.1`),
and `tfds.builder("fashion_mnist")` reads it afterwards like any other.

`skip_registration` keeps TFDS's registry pointing at TFDS's classes (a second class
under the same name would be refused); these are only used to prepare.
"""

import pathlib

import tensorflow_datasets as tfds

from cnn_jax.data.idx.idx_files import read_split


class _FromIdxFiles:
    """The part shared by both builders: splits from the IDX files of `idx_folder`."""

    def __init__(self, *, idx_folder, **kwargs):
        self.idx_folder = pathlib.Path(idx_folder)
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._idx_examples(*read_split(self.idx_folder, split)) for split in ("train", "test")}

    def _idx_examples(self, images, labels):
        # Keyed by position, as TFDS's MNIST builder does.
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}


class MnistFromIdx(_FromIdxFiles, tfds.image_classification.MNIST, skip_registration=True):
    name = "mnist"


class FashionMnistFromIdx(_FromIdxFiles, tfds.image_classification.FashionMNIST, skip_registration=True):
    name = "fashion_mnist"


BUILDERS = {"mnist": MnistFromIdx, "fashion_mnist": FashionMnistFromIdx}
