"""Model registry: names -> factories, with the facts `model_info` reports."""

import dataclasses
import functools
import json
import pathlib
from typing import Callable

import flax.linen as nn

from cnn_jax.errors import UserError, did_you_mean

_REGISTRY: dict = {}
_REFERENCE_FILE = pathlib.Path(__file__).with_name("reference.json")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]   # factory(num_classes=..., **overrides)
    family: str
    input_size: int                     # the paper's native square input
    in_channels: int = 3
    num_classes: int = 1000             # the paper's class count
    description: str = ""


def register(name: str, factory: Callable[..., nn.Module], *, family: str, input_size: int,
             in_channels: int = 3, num_classes: int = 1000, description: str = "") -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = ModelSpec(name, factory, family, input_size, in_channels, num_classes,
                                description)


def list_models() -> list:
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise UserError(f"Unknown model {name!r}{did_you_mean(name, _REGISTRY)}; "
                        f"`cnn-jax summary --list` shows all {len(_REGISTRY)} names.")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """A flax.linen Module; `num_classes` defaults to the paper's (1000 for ImageNet nets)."""
    spec = get_spec(name)
    n = spec.num_classes if num_classes is None else int(num_classes)
    try:
        return spec.factory(num_classes=n, **kwargs)
    except TypeError as e:
        raise UserError(f"Model {name!r} does not take the options {sorted(kwargs)} ({e}); "
                        "remove them from `model_kwargs`.") from None


@functools.cache
def reference_numbers() -> dict:
    """Published numbers per model name (reference.json, extracted from the architecture
    reference file by tools/extract_reference.py)."""
    return json.loads(_REFERENCE_FILE.read_text()) if _REFERENCE_FILE.exists() else {}


def model_info(name: str, input_size: int | None = None) -> dict:
    """Parameters and MACs (computed, batch 1, native size) with the published figures."""
    from cnn_jax.report.summary import summarize  # analysis depends on models, not the reverse
    spec = get_spec(name)
    size = input_size or spec.input_size
    s = summarize(create_model(name), (1, size, size, spec.in_channels))
    return {"name": name, "family": spec.family, "input_size": size,
            "in_channels": spec.in_channels, "num_classes": spec.num_classes,
            "params": s.total_params, "macs": s.total_macs, "description": spec.description,
            "reference": reference_numbers().get(name, {})}
