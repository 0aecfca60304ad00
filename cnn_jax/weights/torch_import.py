"""Load torchvision weights (state dicts) into our flax models, so that our logits equal
torchvision's.

    module, variables = load_torchvision_weights("resnet50_v1_5", "resnet50.safetensors")
    module, variables = load_torchvision_weights("densenet121", "densenet121-a639ec97.pth")
    module, variables = load_torchvision_weights("resnet18", torch_model.state_dict())
    logits = module.apply(variables, x, train=False)     # x: NHWC

`model_name` is ours (`supported_models()`); `torchvision_architecture(name)` is
torchvision's name of the same network. torchvision's `resnet50` is our
`resnet50_v1_5`, its `alexnet` our `alexnet_owt` and its `googlenet` our
`googlenet_tv` (see `torch_maps.NEAR_MISSES`).

Each torchvision module is found in ours by the family's map in `torch_maps`, and
its tensors are converted by the module's kind, which its tensors tell:

    torchvision                               ours (flax)
    Conv2d weight (out, in/groups, h, w)      Conv kernel (h, w, in/groups, out); grouped
                                              convs too: both keep a group's outputs together
    Linear weight (out, in)                   Dense kernel (in, out)
    Linear over a flattened (C, H, W) map     the same, rows reordered to our (H, W, C) flatten
    BatchNorm2d weight, bias,                 params scale, bias,
                running_mean, running_var     batch_stats mean, var (num_batches_tracked dropped)

Then every parameter and statistic of our model must have received exactly one
tensor of its shape; anything else is an error naming the missing, extra or
misshapen tensors. `num_classes` defaults to the file's classifier; Inception-v3's
aux head is built when the file has one (`aux_logits=False` drops it).

Inception-v3 is built with `pool_count_include_pad=True`: torchvision's 3x3
average pools count the zero padding (Keras's, our default, do not). Inception-v3
and GoogLeNet take inputs scaled to [-1, 1], which is what torchvision's published
models (`transform_input=True`) make of ImageNet-normalised inputs.

Files are read by `torch_files`, which never executes a pickle.
"""

import functools
import os
import re
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from cnn_jax.models.registry import create_model, get_spec
from cnn_jax.weights.listing import MAX_LISTED, listing
from cnn_jax.weights.torch_files import SKIPPED_LEAVES, TorchImportError, read_state_dict, state_dict_arrays
from cnn_jax.weights.torch_maps import NEAR_MISSES, TORCH_MODELS

BN_LEAVES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}


class Tensor(NamedTuple):
    """One converted tensor and where it goes."""

    source: str  # torchvision's key, for messages
    shape: tuple  # torchvision's shape, for messages
    path: str
    collection: str
    leaf: str
    value: np.ndarray


def supported_models() -> list:
    return sorted(TORCH_MODELS)


def torchvision_architecture(model_name: str) -> str:
    """The `torchvision.models` constructor whose weights fit our `model_name`."""
    return _torch_model(model_name).architecture


def _torch_model(model_name: str):
    if model_name in TORCH_MODELS:
        return TORCH_MODELS[model_name]
    if model_name in NEAR_MISSES:
        raise TorchImportError(f"{NEAR_MISSES[model_name]}.")
    raise TorchImportError(
        f"Model {model_name!r} has no torchvision counterpart; torchvision "
        f"weights load into {', '.join(supported_models())}."
    )


# ----------------------------------------------------------------------------- conversion


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """torch (out, in/groups, h, w) -> flax (h, w, in/groups, out)."""
    return np.transpose(weight, (2, 3, 1, 0))


def dense_kernel(weight: np.ndarray, window: int | None = None) -> np.ndarray:
    """torch (out, in) -> flax (in, out). After a flatten, torch's inputs are ordered
    (c, h, w) of its NCHW map and ours (h, w, c) of our NHWC map: reorder the rows."""
    out, n = weight.shape
    if window is None or n % (window * window):
        return weight.T  # a wrong flatten size shows as a shape problem
    c = n // (window * window)
    return weight.reshape(out, c, window, window).transpose(2, 3, 1, 0).reshape(n, out)


def group_modules(state: dict, rekey: tuple = ()) -> dict:
    """{torchvision module name: {leaf: array}}, older key spellings renamed."""
    modules = {}
    for key, value in state.items():
        for pattern, replacement in rekey:
            key = re.sub(pattern, replacement, key)
        module, _, leaf = key.rpartition(".")
        modules.setdefault(module, {})[leaf] = value
    return modules


def module_tensors(name: str, leaves: dict, path: str, window: int | None) -> tuple:
    """([Tensor], problems) of one torchvision module going to our module at `path`."""
    weight = leaves.get("weight")
    kind = (
        "bn"
        if {"running_mean", "running_var"} & set(leaves)
        else {4: "conv", 2: "linear"}.get(getattr(weight, "ndim", None))
    )
    tensors, problems = [], []
    for leaf, value in leaves.items():
        source = f"{name}.{leaf}"
        if leaf in SKIPPED_LEAVES:
            continue
        if kind == "bn" and leaf in BN_LEAVES:
            where = BN_LEAVES[leaf]
        elif kind in ("conv", "linear") and leaf in ("weight", "bias"):
            where = ("params", "kernel" if leaf == "weight" else "bias")
            if leaf == "weight":
                value = conv_kernel(value) if kind == "conv" else dense_kernel(value, window)
        else:
            problems.append(f"extra: {source} {value.shape} is no conv, linear or BatchNorm tensor this importer knows")
            continue
        tensors.append(Tensor(source, leaves[leaf].shape, path, *where, value))
    return tensors, problems


@functools.lru_cache(maxsize=32)
def our_shapes(module, input_shape: tuple, train: bool) -> dict:
    """{(collection, path, leaf): shape} of our model's variables (jax.eval_shape: nothing is
    allocated). `train=True` includes auxiliary heads, which only a training init creates."""
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    abstract = jax.eval_shape(
        functools.partial(module.init, train=train), rngs, jax.ShapeDtypeStruct(input_shape, jnp.float32)
    )
    return {
        (collection, "/".join(path), leaf): value.shape
        for (collection, *path, leaf), value in traverse_util.flatten_dict(abstract).items()
    }


def assemble(tensors: list, shapes: dict) -> tuple:
    """Our variables (flat: (collection, *path, leaf) -> array) and a list of problems."""
    filled, sources, problems = {}, {}, []
    for t in tensors:
        key = (t.collection, t.path, t.leaf)
        where = "/".join(key)
        if key not in shapes:
            problems.append(f"extra: {t.source} -> {where} does not exist in ours")
        elif key in filled:
            problems.append(f"twice: {where} from {sources[key]} and {t.source}")
        elif t.value.shape != shapes[key]:
            problems.append(
                f"shape: {t.source} is {t.shape}, giving {t.value.shape} for {where}, which is {shapes[key]}"
            )
        else:
            filled[key], sources[key] = t.value, t.source
    missing = sorted("/".join(key) for key in shapes if key not in filled)
    if missing:
        problems.append(f"missing: {len(missing)} of ours received nothing ({listing(missing)})")
    flat = {(c, *path.split("/"), leaf): value for (c, path, leaf), value in filled.items()}
    return flat, problems


def convert_state_dict(model_name: str, state: dict, **model_kwargs) -> tuple:
    """(module, variables) of our `model_name` from a torchvision state dict of numpy arrays."""
    torch_model = _torch_model(model_name)
    modules = group_modules(state, torch_model.rekey)
    kwargs = {**dict(torch_model.defaults), **model_kwargs}
    classifier = modules.get(torch_model.classifier, {}).get("weight")
    if classifier is not None and classifier.ndim == 2:
        kwargs.setdefault("num_classes", int(classifier.shape[0]))
    if torch_model.aux:
        kwargs.setdefault("aux_logits", any(m.startswith(torch_model.aux) for m in modules))
        if not kwargs["aux_logits"]:  # asked for no aux head: its tensors are left out
            modules = {m: v for m, v in modules.items() if not m.startswith(torch_model.aux)}
    spec = get_spec(model_name)
    module = create_model(model_name, **kwargs)
    shapes = our_shapes(
        module, (1, spec.input_size, spec.input_size, spec.in_channels), bool(torch_model.aux and kwargs["aux_logits"])
    )
    windows, tensors, problems = dict(torch_model.flatten), [], []
    for name, leaves in modules.items():
        path = torch_model.rename(name)
        if path is None:
            problems.append(f"extra: torchvision's {name} ({', '.join(leaves)}) has no module in ours")
            continue
        more_tensors, more_problems = module_tensors(name, leaves, path, windows.get(path))
        tensors += more_tensors
        problems += more_problems
    flat, more = assemble(tensors, shapes)
    problems += more
    if problems:
        raise TorchImportError(
            f"torchvision's {torch_model.architecture} weights do not fit our {model_name} one "
            f"to one ({len(problems)} problems): "
            + "; ".join(problems[:MAX_LISTED])
            + ("; ..." if len(problems) > MAX_LISTED else "")
        )
    if torch_model.caveat:
        warnings.warn(f"{torch_model.caveat}.", stacklevel=3)
    variables = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})
    return module, variables


def load_torchvision_weights(model_name: str, path_or_state_dict, **model_kwargs) -> tuple:
    """(module, variables): our `model_name` computing the function of torchvision's weights.

    `path_or_state_dict` is a `.safetensors` or `.pth`/`.pt` file of a torchvision
    model's state_dict(), or the state dict itself (torch tensors or numpy arrays).
    `num_classes` defaults to the file's; other `model_kwargs` go to `create_model`
    (e.g. `fc_features` for a VGG or AlexNet with other hidden widths).
    """
    _torch_model(model_name)  # a wrong name fails before a large file is read
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        state = read_state_dict(path_or_state_dict)
    elif isinstance(path_or_state_dict, Mapping):
        state = state_dict_arrays(path_or_state_dict, "the state dict")
    else:
        raise TorchImportError(
            f"Got a {type(path_or_state_dict).__name__}; give the path of a "
            "`.safetensors`/`.pth` file or a state dict (model.state_dict())."
        )
    return convert_state_dict(model_name, state, **model_kwargs)
