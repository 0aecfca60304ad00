"""The embedded offline dataset `digits` (a TFDS builder; see digits.py)."""

from cnn_jax.data.digits.digits import Digits  # noqa: F401  (registers the builder)
