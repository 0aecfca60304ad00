"""The model zoo: `list_models()`, `create_model(name, num_classes, **kw)`, `model_info(name)`.

Importing a family module registers its names.
"""

from cnn_jax.models import lenet, resnet  # noqa: F401  (registration)
from cnn_jax.models.registry import create_model, get_spec, list_models, model_info

__all__ = ["create_model", "get_spec", "list_models", "model_info"]
