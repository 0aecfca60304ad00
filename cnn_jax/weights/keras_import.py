"""Load Keras 3 `keras.applications` weights into our flax models, so that our
logits equal Keras's.

    module, variables = load_keras_weights("resnet50", keras_model)        # a live keras.Model
    module, variables = load_keras_weights("resnet50", "r50.weights.h5")   # or .keras / Keras 2 .h5
    logits = module.apply(variables, x, train=False)

The core is generic: it walks Keras's layers that hold weights, finds each one's
module in our model (by name through the family's map in `keras_maps`, or, for
layers Keras leaves unnamed such as `conv2d_17`, by creation order), and converts
each tensor by the layer's kind:

    Keras                          ours (flax)
    Conv2D kernel (h, w, in, out)  Conv kernel: the same HWIO layout
    Dense kernel (in, out)         Dense kernel: the same
    DepthwiseConv2D (h, w, c, m)   grouped Conv kernel (h, w, 1, c*m)
    SeparableConv2D                `<path>/depthwise` + `<path>/pointwise`
    BatchNormalization             params scale/bias, batch_stats mean/var
                                   (gamma, beta, moving_mean, moving_variance)

Then it checks that every parameter and statistic of our model received exactly
one tensor of its shape, and that Keras's BatchNorm epsilon is ours; anything
else is an error that names the missing, extra or misshapen tensors.

Keras is imported only when a file is given (a live model brings its own); any
Keras backend works. Files are read by `keras_files`.
"""

import os
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from cnn_jax.errors import UserError
from cnn_jax.models.registry import create_model, get_spec
from cnn_jax.weights.keras_maps import KERAS_MODELS, FamilyMap
from cnn_jax.weights.listing import MAX_LISTED, listing

# Keras layer class -> the kind of module that receives it (None: ours has two modules).
KERAS_KINDS = {
    "Conv2D": "conv",
    "DepthwiseConv2D": "conv",
    "SeparableConv2D": None,
    "Dense": "dense",
    "BatchNormalization": "bn",
}
# The names Keras gives layers created without one: snake_case class name + a counter.
AUTO_NAMES = {
    "Conv2D": "conv2d",
    "DepthwiseConv2D": "depthwise_conv2d",
    "SeparableConv2D": "separable_conv2d",
    "Dense": "dense",
    "BatchNormalization": "batch_normalization",
}
BN_LEAVES = {
    "gamma": ("params", "scale"),
    "beta": ("params", "bias"),
    "moving_mean": ("batch_stats", "mean"),
    "moving_variance": ("batch_stats", "var"),
}


class KerasImportError(UserError):
    """Keras's weights do not fit our model one to one."""


class KerasLayer(NamedTuple):
    name: str
    cls: str  # Keras class name
    weights: dict  # variable name ('kernel', 'gamma', ...) -> np.ndarray
    epsilon: float | None  # BatchNormalization only


class OurLayer(NamedTuple):
    path: str  # '/'-joined module path
    kind: str  # conv | dense | bn
    leaves: dict  # (collection, leaf name) -> shape
    epsilon: float | None  # BatchNorm only


class Tensor(NamedTuple):
    """One converted tensor and where it goes."""

    source: str  # 'keras_layer/variable', for messages
    path: str
    collection: str
    leaf: str
    value: np.ndarray


def supported_models() -> list:
    return sorted(KERAS_MODELS)


def keras_application(model_name: str) -> str:
    """The `keras.applications` constructor whose weights fit our `model_name`."""
    return _keras_model(model_name).constructor


def _keras_model(model_name: str):
    if model_name not in KERAS_MODELS:
        raise KerasImportError(
            f"Model {model_name!r} has no Keras counterpart; Keras weights load into {', '.join(supported_models())}."
        )
    return KERAS_MODELS[model_name]


# ----------------------------------------------------------------------------- Keras side


def keras_layers(model) -> list:
    """The layers of a keras.Model that hold weights, with their tensors as numpy arrays."""
    layers = []
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model: its layers, under their own names
            layers += keras_layers(layer)
            continue
        if not layer.weights:
            continue
        cls = type(layer).__name__
        if cls not in KERAS_KINDS:
            raise KerasImportError(
                f"Keras layer {layer.name!r} is a {cls}, which has no flax "
                f"counterpart here (known: {', '.join(KERAS_KINDS)})."
            )
        weights = {w.name.split("/")[-1].split(":")[0]: np.asarray(w.numpy(), np.float32) for w in layer.weights}
        layers.append(KerasLayer(layer.name, cls, weights, getattr(layer, "epsilon", None)))
    return layers


def _auto_index(layer: KerasLayer):
    """Creation index of a layer Keras named itself (`conv2d_17` -> 17), None for named ones."""
    match = re.fullmatch(rf"{AUTO_NAMES[layer.cls]}(?:_(\d+))?", layer.name)
    return None if match is None else int(match[1] or 0)


# ----------------------------------------------------------------------------- our side


def our_layers(module, input_shape: tuple):
    """Our modules that own variables, in the order they run, and the abstract variables.

    Uses jax.eval_shape (no arrays are allocated); the call order is recorded by
    intercepting every module call.
    """
    calls = {}

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__":
            path = "/".join(context.module.path)
            calls.setdefault(path, getattr(context.module, "epsilon", None))
        return next_fun(*args, **kwargs)

    import flax.linen as nn

    with nn.intercept_methods(record):
        abstract = jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct(input_shape, jnp.float32))
    leaves = {}
    for (collection, *path, leaf), value in traverse_util.flatten_dict(abstract).items():
        leaves.setdefault("/".join(path), {})[(collection, leaf)] = value.shape
    layers = []
    for path, epsilon in calls.items():
        if path in leaves:
            own = leaves.pop(path)
            kind = (
                "bn"
                if ("batch_stats", "mean") in own
                else "conv"
                if len(own.get(("params", "kernel"), ())) == 4
                else "dense"
            )
            layers.append(OurLayer(path, kind, own, epsilon if kind == "bn" else None))
    if leaves:  # variables created outside any module call cannot happen in linen
        raise AssertionError(f"unordered variables: {sorted(leaves)}")
    return layers, abstract


# ----------------------------------------------------------------------------- pairing


def pair_layers(keras: list, ours: list, family: FamilyMap) -> tuple:
    """[(KerasLayer, our path)] and a list of problems.

    Named Keras layers go through the family's map. Keras's auto-named layers
    (`conv2d_17`) fill, kind by kind and in Keras's creation order, our modules
    that no named layer claimed, in the order they run.
    """
    pairs, problems, anonymous = [], [], []
    for layer in keras:
        path = family.rename(layer.name)
        if path is not None:
            pairs.append((layer, path))
        elif _auto_index(layer) is not None and KERAS_KINDS[layer.cls] is not None:
            anonymous.append(layer)
        else:
            problems.append(f"Keras layer {layer.name!r} ({layer.cls}) has no module in ours")
    claimed = {path for _, path in pairs}
    claimed |= {
        f"{path}/{part}"
        for layer, path in pairs
        if layer.cls == "SeparableConv2D"
        for part in ("depthwise", "pointwise")
    }
    for kind in ("conv", "dense", "bn"):
        theirs = sorted((k for k in anonymous if KERAS_KINDS[k.cls] == kind), key=_auto_index)
        free = [o.path for o in ours if o.kind == kind and o.path not in claimed]
        if theirs and len(theirs) != len(free):
            problems.append(
                f"Keras has {len(theirs)} unnamed {kind} layers for our "
                f"{len(free)} unclaimed {kind} modules ({listing(free)})"
            )
            continue
        pairs += list(zip(theirs, free))
    return pairs, problems


# ----------------------------------------------------------------------------- conversion


def depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras (h, w, c, m) -> flax grouped conv (h, w, 1, c*m): output channel c*m + j is
    filter j of input channel c in both."""
    h, w, c, m = kernel.shape
    return kernel.reshape(h, w, 1, c * m)


def layer_tensors(layer: KerasLayer, path: str) -> list:
    """The tensors of one Keras layer, converted to our layout, with their destinations."""
    out = []
    for name, value in layer.weights.items():
        source = f"{layer.name}/{name}"
        if layer.cls == "BatchNormalization" and name in BN_LEAVES:
            out.append(Tensor(source, path, *BN_LEAVES[name], value))
        elif layer.cls in ("Conv2D", "Dense") and name in ("kernel", "bias"):
            out.append(Tensor(source, path, "params", name, value))
        elif layer.cls == "DepthwiseConv2D" and name in ("kernel", "bias"):
            value = depthwise_kernel(value) if name == "kernel" else value
            out.append(Tensor(source, path, "params", name, value))
        elif layer.cls == "SeparableConv2D" and name in ("depthwise_kernel", "pointwise_kernel"):
            part = name.split("_")[0]
            value = depthwise_kernel(value) if part == "depthwise" else value
            out.append(Tensor(source, f"{path}/{part}", "params", "kernel", value))
        elif layer.cls == "SeparableConv2D" and name == "bias":
            out.append(Tensor(source, f"{path}/pointwise", "params", "bias", value))
        else:
            raise KerasImportError(
                f"Keras layer {layer.name!r} ({layer.cls}) has a variable {name!r} this importer does not know."
            )
    return out


def assemble(pairs: list, ours: list, family: FamilyMap) -> tuple:
    """Our variables (flat: (collection, *path, leaf) -> array) and a list of problems."""
    shapes = {(c, o.path, leaf): shape for o in ours for (c, leaf), shape in o.leaves.items()}
    epsilons = {o.path: o.epsilon for o in ours}
    filled, sources, folds, problems = {}, {}, [], []
    for layer, path in pairs:
        if (
            layer.epsilon is not None
            and path in epsilons
            and epsilons[path] is not None
            and not np.isclose(layer.epsilon, epsilons[path], rtol=1e-6, atol=0)
        ):
            problems.append(
                f"BatchNorm epsilon of {path} is {epsilons[path]:g}, Keras's "
                f"{layer.name} uses {layer.epsilon:g} (pass bn_epsilon=)"
            )
        for t in layer_tensors(layer, path):
            key = (t.collection, t.path, t.leaf)
            if key not in shapes:
                bn = family.fold_bias(t.path) if t.leaf == "bias" else None
                if bn is not None and ("batch_stats", bn, "mean") in shapes:
                    folds.append((bn, t))
                else:
                    problems.append(f"extra: {t.source} -> {'/'.join(key)} does not exist in ours")
            elif key in filled:
                problems.append(f"twice: {'/'.join(key)} from {sources[key]} and {t.source}")
            elif t.value.shape != shapes[key]:
                problems.append(f"shape: {t.source} is {t.value.shape}, {'/'.join(key)} is {shapes[key]}")
            else:
                filled[key], sources[key] = t.value, t.source
    folded = {}
    for bn, t in folds:
        mean = ("batch_stats", bn, "mean")
        if bn in folded:
            problems.append(f"twice: {folded[bn]} and {t.source} both fold into {bn}")
        elif mean in filled and filled[mean].shape == t.value.shape:
            filled[mean] = filled[mean] - t.value  # BN(z + b; mean m) = BN(z; mean m - b)
            folded[bn] = t.source
        else:
            problems.append(f"extra: {t.source} has no BatchNorm mean to fold into at {bn}")
    missing = sorted("/".join(key) for key in shapes if key not in filled)
    if missing:
        problems.append(f"missing: {len(missing)} of ours received nothing ({listing(missing)})")
    flat = {(c, *path.split("/"), leaf): value for (c, path, leaf), value in filled.items()}
    return flat, problems


def convert_keras_layers(model_name: str, layers: list, **model_kwargs) -> tuple:
    """(module, variables) of our `model_name` from Keras layers (see `keras_layers`)."""
    keras_model = _keras_model(model_name)
    spec = get_spec(model_name)
    module = create_model(model_name, **{**dict(keras_model.defaults), **model_kwargs})
    ours, _ = our_layers(module, (1, spec.input_size, spec.input_size, spec.in_channels))
    pairs, problems = pair_layers(layers, ours, keras_model.family)
    flat, more = assemble(pairs, ours, keras_model.family)
    problems += more
    if problems:
        raise KerasImportError(
            f"Keras's {keras_model.constructor} weights do not fit our {model_name} one to one "
            f"({len(problems)} problems): "
            + "; ".join(problems[:MAX_LISTED])
            + ("; ..." if len(problems) > MAX_LISTED else "")
        )
    variables = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})
    return module, variables


def load_keras_weights(model_name: str, source, **model_kwargs) -> tuple:
    """(module, variables): our `model_name` computing the function of Keras's weights.

    `source` is a keras.Model built by `keras.applications.<keras_application(model_name)>`
    (any `classes`, `include_top=True`), or the path of its `.weights.h5`, `.keras` or
    Keras 2 `.h5` file. `num_classes` defaults to Keras's; other `model_kwargs` go to
    `create_model` (on top of the options Keras's function needs, e.g. `bn_epsilon`).
    """
    _keras_model(model_name)
    if isinstance(source, (str, os.PathLike)):
        from cnn_jax.weights.keras_files import keras_model_from_file  # keras_files imports this module

        source = keras_model_from_file(model_name, source, model_kwargs.get("num_classes"))
    shape = tuple(source.output_shape)
    if len(shape) != 2:
        raise KerasImportError(
            f"The Keras model outputs {shape}, not class scores; build it with "
            "include_top=True (our models always have their classifier)."
        )
    model_kwargs.setdefault("num_classes", int(shape[-1]))
    return convert_keras_layers(model_name, keras_layers(source), **model_kwargs)
