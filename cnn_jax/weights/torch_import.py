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

Files: `.safetensors`, read with safetensors' numpy API (no torch needed), or
`.pth`/`.pt`, read with `torch.load(weights_only=True)` (torch imported only then).
No pickle is ever executed: the imports a `.pth` asks for are first read without
running it, and anything beyond torch's tensor types and plain containers is
refused; torch's weights-only unpickler then refuses any other object.
"""

import functools
import io
import os
import pathlib
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from cnn_jax.errors import UserError
from cnn_jax.models.registry import create_model, get_spec
from cnn_jax.weights.keras_import import MAX_LISTED, _listing
from cnn_jax.weights.torch_maps import NEAR_MISSES, TORCH_MODELS

BN_LEAVES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}
SKIPPED_LEAVES = {"num_batches_tracked"}  # BatchNorm's step counter: nothing computes with it
PICKLE_SUFFIXES = (".pth", ".pt")
# Besides torch's own types (which torch's weights-only unpickler vets), a state dict's
# pickle imports only these: OrderedDict, bytes as protocol 2 spells them, and plain sets
# (protocol 2 names Python 3's `builtins` `__builtin__`).
SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    *((module, name) for module in ("builtins", "__builtin__") for name in ("set", "frozenset")),
}
LEGACY_PICKLES = 5  # torch's pre-1.6 format: magic number, protocol, sys info, object, keys
STRING_PUSHES = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}


class TorchImportError(UserError):
    """torchvision's weights do not fit our model one to one, or cannot be read safely."""


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


# ----------------------------------------------------------------------------- reading


def read_state_dict(path) -> dict:
    """{key: float32 array} of a `.safetensors` or `.pth`/`.pt` file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise TorchImportError(f"No weights file at {path}; give the path of a `.safetensors` or `.pth` file.")
    if path.suffix == ".safetensors":
        return state_dict_arrays(_read_safetensors(path), path.name)
    if path.suffix in PICKLE_SUFFIXES:
        return state_dict_arrays(_read_pth(path), path.name)
    raise TorchImportError(
        f"{path.name} is not a torchvision weights file; give a `.safetensors` or `.pth`/`.pt` file."
    )


def _read_safetensors(path: pathlib.Path) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise TorchImportError(
            "Reading .safetensors files needs the safetensors package: `pip install safetensors`."
        ) from None
    try:
        return load_file(path)
    except Exception as e:  # SafetensorError, or KeyError for dtypes numpy lacks (bfloat16)
        raise TorchImportError(
            f"{path.name} cannot be read as a safetensors file of numpy "
            f"dtypes ({type(e).__name__}: {e}); save it in float32."
        ) from None


def _read_pth(path: pathlib.Path):
    check_pickle_imports(path)
    try:
        import torch
    except ImportError:
        raise TorchImportError(
            f"Reading {path.name} needs PyTorch: `pip install torch`, or "
            "convert the file to .safetensors where torch is installed."
        ) from None
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        culprit = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = culprit[1] if culprit else str(e).splitlines()[0]
        raise TorchImportError(
            f"Refusing {path.name}: it holds pickled objects beyond tensors "
            f"({what}), which only a full unpickler able to run arbitrary "
            "code could load; save the model's state_dict() instead."
        ) from None
    except TypeError:  # weights_only arrived in torch 1.13
        raise TorchImportError(
            f"torch {torch.__version__} cannot load {path.name} without "
            "running its pickle (weights_only needs torch >= 1.13); upgrade "
            "torch or convert the file to .safetensors."
        ) from None
    except (RuntimeError, OSError, EOFError) as e:
        raise TorchImportError(f"{path.name} is not a file torch.save wrote ({e}).") from None


def pickle_imports(stream) -> list:
    """(module, name) of every global one pickle in `stream` imports, read without running it;
    None for an import that cannot be told without running it."""
    pushed, memo, imports = [], {}, []
    for op, arg, _ in pickletools.genops(stream):
        name = op.name
        if name in ("GLOBAL", "INST"):
            imports.append(tuple(arg.split(" ", 1)))
        elif name == "STACK_GLOBAL":  # module and name are the two values on top of the stack
            top = pushed[-2:]
            imports.append(tuple(top) if len(top) == 2 and None not in top else None)
        elif name in ("EXT1", "EXT2", "EXT4"):  # copyreg's extension registry: anything
            imports.append(None)
        # Track which stack tops are known strings; anything else pushes an unknown.
        if name in STRING_PUSHES:
            pushed.append(arg if isinstance(arg, str) else None)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):  # the stack is unchanged
            memo[len(memo) if name == "MEMOIZE" else arg] = pushed[-1] if pushed else None
        else:
            pushed.append(None)
    return imports


def pth_imports(path: pathlib.Path) -> list:
    """The imports of every pickle torch.load would read from `path` (zip or legacy format)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:  # `<name>/data.pkl` beside raw tensor data
            return [
                imp
                for member in archive.namelist()
                if member.endswith(".pkl")
                for imp in pickle_imports(io.BytesIO(archive.read(member)))
            ]
    imports, size = [], path.stat().st_size
    with open(path, "rb") as f:
        for _ in range(LEGACY_PICKLES):
            if f.tell() >= size:
                break
            imports += pickle_imports(f)
    return imports


def _safe_import(imp) -> bool:
    return imp is not None and (imp[0] == "torch" or imp[0].startswith("torch.") or imp in SAFE_GLOBALS)


def check_pickle_imports(path: pathlib.Path) -> None:
    """Refuse a `.pth` whose pickle imports anything a file of tensors does not need."""
    try:
        imports = pth_imports(path)
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TorchImportError(f"{path.name} is not a file torch.save wrote ({e}).") from None
    unsafe = sorted(
        {".".join(imp) if imp else "an import hidden from static reading" for imp in imports if not _safe_import(imp)}
    )
    if unsafe:
        raise TorchImportError(
            f"Refusing {path.name}: unpickling it would import "
            f"{_listing(unsafe)}, which a file of tensors never needs and "
            "which could run arbitrary code; re-save its state_dict() as "
            ".safetensors where it was made."
        )


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor: numpy has no bfloat16, so upcast floats
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        value = value.numpy()
    array = np.asarray(value)
    floating = np.issubdtype(array.dtype, np.floating)
    return array.astype(np.float32, copy=False) if floating else array  # no copy of float32


def state_dict_arrays(obj, source: str) -> dict:
    """{key: numpy array} of a state dict; a training checkpoint's {'state_dict': ...} or
    {'model': ...} is unwrapped and DataParallel's 'module.' prefix dropped."""
    if isinstance(obj, Mapping):
        wrapped = [obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)]
        obj = wrapped[0] if wrapped else obj
    if not isinstance(obj, Mapping) or not obj:
        raise TorchImportError(
            f"{source} holds {type(obj).__name__!r}, not a state dict of tensors; save model.state_dict()."
        )
    arrays = {str(key): _to_numpy(value) for key, value in obj.items()}
    odd = [
        key
        for key, a in arrays.items()
        if a.dtype == object or (a.ndim == 0 and key.rpartition(".")[2] not in SKIPPED_LEAVES)
    ]
    if odd:
        raise TorchImportError(
            f"{source} is not a state dict of tensors: {_listing(odd)} are not tensors; save model.state_dict()."
        )
    if all(key.startswith("module.") for key in arrays):
        arrays = {key.removeprefix("module."): a for key, a in arrays.items()}
    return arrays


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
        problems.append(f"missing: {len(missing)} of ours received nothing ({_listing(missing)})")
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
