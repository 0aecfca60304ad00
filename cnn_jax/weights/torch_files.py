"""Read a torchvision state dict from a file without executing any pickle.

Files: `.safetensors`, read with safetensors' numpy API (no torch needed), or
`.pth`/`.pt`, read with `torch.load(weights_only=True)` (torch imported only then).
No pickle is ever executed: the imports a `.pth` asks for are first read without
running it, and anything beyond torch's tensor types and plain containers is
refused; torch's weights-only unpickler then refuses any other object.
"""

import io
import pathlib
import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping

import numpy as np

from cnn_jax.errors import UserError
from cnn_jax.weights.listing import listing

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
    """torchvision's weights do not fit our model one to one, or cannot be read safely.

    Reading raises it here and conversion in `torch_import`, which builds on this module."""


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
            f"{listing(unsafe)}, which a file of tensors never needs and "
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
            f"{source} is not a state dict of tensors: {listing(odd)} are not tensors; save model.state_dict()."
        )
    if all(key.startswith("module.") for key in arrays):
        arrays = {key.removeprefix("module."): a for key, a in arrays.items()}
    return arrays
