"""Datasets, the input pipeline, the papers' augmentations and evaluation protocols."""

from cnn_jax.console import import_tensorflow

import_tensorflow()  # first, so that TFDS and the pipeline find it imported, without its start-up lines
