"""The model zoo: `list_models()`, `create_model(name, num_classes, **kw)`, `model_info(name)`.

Every module of this package other than the shared ones defines one family and
registers its names when imported; importing the package imports them all.
"""

import importlib
import pkgutil

from cnn_jax.models.registry import create_model, get_spec, list_models, model_info

_SHARED = {"registry", "layers"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SHARED and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["create_model", "get_spec", "list_models", "model_info"]
