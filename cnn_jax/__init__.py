"""cnn_jax: the classic ImageNet CNNs in JAX/Flax, trained with their papers' recipes."""

__version__ = "0.1.0"
