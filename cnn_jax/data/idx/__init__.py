"""`mnist` and `fashion_mnist` prepared offline from their IDX files through TFDS's own
builders (builders.py), found where prepare.py says."""

from cnn_jax.data.idx.prepare import IDX_DATASETS, prepare_from_idx  # noqa: F401
