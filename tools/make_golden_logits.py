"""Write the golden logits that let the default test suite compare our importers with
torchvision and Keras without either installed.

For every architecture that `cnn_jax.weights.torch_import` and `cnn_jax.weights.keras_import`
support, this builds the reference framework's own model (a `torchvision.models` constructor,
a `keras.applications` function; 10 classes, no downloaded weights), draws every tensor of it
with numpy from a fixed seed, in the framework's own names, layout and order (the state dict
for torchvision, each weighted layer's variables for Keras), loads them, and runs a seeded
input through it. `tests/golden/<framework>_<our model>.npz` then holds

    recipe  a JSON string: the seeds, the input's shape and range, and one entry per tensor
            ([key, shape, dtype, low, high] for torchvision; per Keras layer its name, class,
            BatchNorm epsilon and [variable, shape, low, high] entries), in drawing order
    logits  float32 (batch, 10): the reference framework's output for that input

and nothing else: no weights, no input. Every value is `low + (high - low) * u` with `u`
from `np.random.default_rng(seed).random(shape)` (float64) cast to float32, one call per
tensor in recipe order: kernels He-uniform over their fan-in, BatchNorm gammas and variances
in [0.5, 1.5], biases, betas and means in [-0.1, 0.1]; torchvision's `num_batches_tracked`
is the int64 scalar 0. `tests/test_golden_logits.py` redraws the same tensors from the recipe
with numpy alone and gives them to our importers (`load_torchvision_weights` with a state
dict of numpy arrays, `convert_keras_layers` with Keras's layers as arrays).

VGG's and AlexNet's hidden FC layers have 64 units instead of 4096 (the frameworks' classifier
layer for layer, narrower; ours is built with `fc_features=(64, 64)`, which the recipe's
`ours` records): their 4096-wide FC6 alone would be 38M-103M values to draw in every test.
Inputs are the smallest that both frameworks accept and that keep each network's spatial
structure (64 px for ResNet, DenseNet, VGG, AlexNet, GoogLeNet, MobileNet; 75 for
Inception-v3 and Inception-ResNet-v2, 71 for Xception; 224 for Keras's VGG, whose Flatten
needs the 7x7 map); torchvision's Inception-v3 and GoogLeNet take the input as it is
(`transform_input=False`). Keras runs on its TensorFlow backend, independent of JAX.

Re-run from the repository's root, with torch, torchvision, keras and tensorflow in a venv
of their own outside the repository (a CPU or CUDA build of torch; everything runs on the CPU):

    python3.11 -m venv /path/to/golden-env
    /path/to/golden-env/bin/pip install torch torchvision "tensorflow-cpu==2.21.*" keras h5py \
        safetensors "jax==0.10.2" "flax==0.12.8" ml-collections
    PYTHONPATH=. /path/to/golden-env/bin/python tools/make_golden_logits.py          # all
    PYTHONPATH=. /path/to/golden-env/bin/python tools/make_golden_logits.py torch resnet18

It rewrites the chosen goldens and `tests/golden/VERSIONS.json`, and prints for each model
how far our importer's logits are from the reference's (the test's check, run here on the
arrays the reference got).
"""

import argparse
import functools
import json
import os
import pathlib
import platform
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_jax.weights import keras_import as ki  # noqa: E402
from cnn_jax.weights import torch_import as ti  # noqa: E402

GOLDEN = ROOT / "tests" / "golden"
CLASSES = 10
BATCH = 2
WEIGHT_SEED, INPUT_SEED = 0, 1
INPUT_RANGE = (-1.0, 1.0)
SMALL = 64  # every ResNet, DenseNet, VGG (torchvision), AlexNet, GoogLeNet, MobileNet
TORCH_SIZES = {"inception_v3": 75}
KERAS_SIZES = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71, "vgg16": 224, "vgg19": 224}
TORCH_KWARGS = {
    "inception_v3": {"init_weights": False, "transform_input": False},
    "googlenet": {"init_weights": False, "transform_input": False},
}
FC_WIDTH = 64  # VGG's and AlexNet's hidden FC layers (4096 in the papers and frameworks)
NARROW = {"fc_features": [FC_WIDTH, FC_WIDTH]}  # our options for the same network
UNIT_RANGE, SHIFT_RANGE = (0.5, 1.5), (-0.1, 0.1)
RTOL = 1e-4


# ----------------------------------------------------------------------------- drawing


def he_range(fan_in: int) -> tuple:
    """He-uniform: the variance 2 / fan_in of He-normal."""
    limit = float(np.sqrt(6.0 / fan_in))
    return -limit, limit


def draw(rng, shape, low: float, high: float) -> np.ndarray:
    return (low + (high - low) * rng.random(tuple(shape))).astype(np.float32)


def input_recipe(size: int) -> dict:
    return {"seed": INPUT_SEED, "shape": [BATCH, size, size, 3], "low": INPUT_RANGE[0], "high": INPUT_RANGE[1]}


def draw_input(recipe: dict) -> np.ndarray:
    spec = recipe["input"]
    return draw(np.random.default_rng(spec["seed"]), spec["shape"], spec["low"], spec["high"])


def torch_range(key: str, shape: tuple) -> tuple:
    leaf = key.rpartition(".")[2]
    if len(shape) > 1:  # conv (out, in/groups, h, w) or linear (out, in)
        return he_range(int(np.prod(shape[1:])))
    return UNIT_RANGE if leaf in ("weight", "running_var") else SHIFT_RANGE


def keras_range(cls: str, name: str, shape: tuple) -> tuple:
    if name.endswith("kernel"):  # a depthwise filter sees h*w inputs
        depthwise = name == "depthwise_kernel" or cls == "DepthwiseConv2D"
        return he_range(int(np.prod(shape[:2] if depthwise else shape[:-1])))
    return UNIT_RANGE if name in ("gamma", "moving_variance") else SHIFT_RANGE


# ----------------------------------------------------------------------------- torchvision


def import_torchvision():
    """torchvision, imported even where its compiled ops do not match torch's build (the
    models need none of them): `register_fake` of an unknown operator then does nothing."""
    import torch

    try:
        import torchvision
    except RuntimeError as e:
        if "does not exist" not in str(e):
            raise
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        torch.library.register_fake = lambda *a, **k: lambda f: f
        import torchvision
    return torch, torchvision


def narrow(model_name: str) -> bool:
    return model_name.startswith(("vgg", "alexnet"))


def narrow_torch_classifier(torch, model):
    """torchvision's VGG/AlexNet classifier, module for module (so its keys stay), with
    FC_WIDTH hidden units."""
    linears = [i for i, m in enumerate(model.classifier) if isinstance(m, torch.nn.Linear)]
    modules = list(model.classifier)
    for i in linears:
        fan_in = modules[i].in_features if i == linears[0] else FC_WIDTH
        modules[i] = torch.nn.Linear(fan_in, modules[i].out_features if i == linears[-1] else FC_WIDTH)
    model.classifier = torch.nn.Sequential(*modules)
    return model


def torch_recipe(model_name: str, state_shapes: dict) -> dict:
    tensors = [
        [key, list(shape), "int64", 0, 0]
        if key.endswith("num_batches_tracked")
        else [key, list(shape), "float32", *torch_range(key, shape)]
        for key, shape in state_shapes.items()
    ]
    architecture = ti.torchvision_architecture(model_name)
    return {
        "framework": "torchvision",
        "model": model_name,
        "architecture": architecture,
        "kwargs": {"num_classes": CLASSES, **TORCH_KWARGS.get(architecture, {})},
        "hidden_fc": FC_WIDTH if narrow(model_name) else None,
        "ours": NARROW if narrow(model_name) else {},
        "seed": WEIGHT_SEED,
        "input": input_recipe(TORCH_SIZES.get(model_name, SMALL)),
        "tensors": tensors,
    }


def torch_state(recipe: dict) -> dict:
    rng = np.random.default_rng(recipe["seed"])
    return {
        key: np.array(low, np.int64) if dtype == "int64" else draw(rng, shape, low, high)
        for key, shape, dtype, low, high in recipe["tensors"]
    }


def torch_golden(model_name: str) -> tuple:
    """(recipe, reference logits, state dict of numpy arrays, input NHWC)."""
    torch, torchvision = import_torchvision()
    architecture = ti.torchvision_architecture(model_name)
    kwargs = {"num_classes": CLASSES, **TORCH_KWARGS.get(architecture, {})}
    model = getattr(torchvision.models, architecture)(weights=None, **kwargs).eval()
    model = narrow_torch_classifier(torch, model).eval() if narrow(model_name) else model
    recipe = torch_recipe(model_name, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    state = torch_state(recipe)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = draw_input(recipe)
    with torch.no_grad():
        logits = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    return recipe, logits, state, x


def our_options(recipe: dict) -> dict:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in recipe["ours"].items()}


def ours_from_torch(recipe: dict, state: dict) -> tuple:
    return ti.load_torchvision_weights(recipe["model"], state, **our_options(recipe))


# ----------------------------------------------------------------------------- Keras


def weighted_layers(model) -> list:
    """Keras's layers that hold weights, nested models' layers included, in the order
    `keras_import.keras_layers` reads them."""
    layers = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            layers += weighted_layers(layer)
        elif layer.weights:
            layers.append(layer)
    return layers


def variable_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def keras_recipe(model_name: str, model) -> dict:
    layers = []
    for layer in weighted_layers(model):
        cls = type(layer).__name__
        tensors = [
            [variable_name(w), list(w.shape), *keras_range(cls, variable_name(w), tuple(w.shape))]
            for w in layer.weights
        ]
        layers.append([layer.name, cls, getattr(layer, "epsilon", None), tensors])
    size = model.input_shape[1]
    return {
        "framework": "keras",
        "model": model_name,
        "application": ki.keras_application(model_name),
        "kwargs": {"classes": CLASSES, "classifier_activation": None, "input_shape": [size, size, 3]},
        "hidden_fc": FC_WIDTH if narrow(model_name) else None,
        "ours": NARROW if narrow(model_name) else {},
        "seed": WEIGHT_SEED,
        "input": input_recipe(size),
        "layers": layers,
    }


def keras_arrays(recipe: dict) -> list:
    """[(layer name, class, epsilon, {variable: array})] drawn in recipe order."""
    rng = np.random.default_rng(recipe["seed"])
    return [
        (name, cls, epsilon, {var: draw(rng, shape, low, high) for var, shape, low, high in tensors})
        for name, cls, epsilon, tensors in recipe["layers"]
    ]


def narrow_keras_vgg(keras, build, size: int):
    """keras.applications' VGG with its own top (Flatten, fc1, fc2, predictions: the
    application's code) rebuilt with FC_WIDTH hidden units."""
    base = build(include_top=False, weights=None, input_shape=(size, size, 3))
    x = keras.layers.Flatten(name="flatten")(base.output)
    x = keras.layers.Dense(FC_WIDTH, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(FC_WIDTH, activation="relu", name="fc2")(x)
    x = keras.layers.Dense(CLASSES, activation=None, name="predictions")(x)
    return keras.Model(base.input, x, name=base.name)


def keras_golden(model_name: str) -> tuple:
    """(recipe, reference logits, [KerasLayer] of the drawn arrays, input NHWC)."""
    import keras

    size = KERAS_SIZES.get(model_name, SMALL)
    build = getattr(keras.applications, ki.keras_application(model_name))
    model = (
        narrow_keras_vgg(keras, build, size)
        if narrow(model_name)
        else build(weights=None, classes=CLASSES, classifier_activation=None, input_shape=(size, size, 3))
    )
    recipe = keras_recipe(model_name, model)
    arrays = keras_arrays(recipe)
    for layer, (name, _, _, values) in zip(weighted_layers(model), arrays, strict=True):
        assert layer.name == name
        for w in layer.weights:
            w.assign(values[variable_name(w)])
    x = draw_input(recipe)
    logits = np.asarray(model(x, training=False))
    layers = [ki.KerasLayer(name, cls, values, epsilon) for name, cls, epsilon, values in arrays]
    assert [(k.name, sorted(k.weights)) for k in ki.keras_layers(model)] == [
        (k.name, sorted(k.weights)) for k in layers
    ]  # the importer reads what was drawn
    keras.backend.clear_session()
    return recipe, logits, layers, x


def ours_from_keras(recipe: dict, layers: list) -> tuple:
    return ki.convert_keras_layers(recipe["model"], layers, num_classes=CLASSES, **our_options(recipe))


# ----------------------------------------------------------------------------- writing

FRAMEWORKS = {
    "torch": (ti.supported_models, torch_golden, ours_from_torch),
    "keras": (ki.supported_models, keras_golden, ours_from_keras),
}


def spread_problem(logits: np.ndarray) -> str:
    """Why these logits would compare too little, or '' if they are fine."""
    scale = np.abs(logits).max()
    if not np.isfinite(logits).all() or scale < 1e-3:
        return f"dead or non-finite logits (max |logit| {scale:.3g})"
    if logits.std(axis=1).min() < 0.05 * scale:
        return "the classes hardly differ"
    if np.abs(logits[0] - logits[1]).max() < 100 * RTOL * scale:
        return "the output hardly depends on the input"
    return ""


def our_difference(module, variables, x: np.ndarray, logits: np.ndarray) -> float:
    import jax

    ours = np.asarray(jax.jit(functools.partial(module.apply, train=False))(variables, x))
    return float(np.abs(ours - logits).max() / np.abs(logits).max())


def write_golden(framework: str, model_name: str) -> dict:
    _, golden, ours = FRAMEWORKS[framework]
    recipe, logits, weights, x = golden(model_name)
    problem = spread_problem(logits)
    if problem:
        raise SystemExit(f"{framework} {model_name}: {problem}; change the drawing ranges")
    path = GOLDEN / f"{framework}_{model_name}.npz"
    np.savez_compressed(
        path, recipe=np.array(json.dumps(recipe, separators=(",", ":"))), logits=logits.astype(np.float32)
    )
    rel = our_difference(*ours(recipe, weights), x, logits)
    print(
        f"{path.name}: {path.stat().st_size} bytes, input {recipe['input']['shape']}, "
        f"max |logit| {np.abs(logits).max():.3g}, ours differ by {rel:.2e} (relative)"
        + ("" if rel < RTOL else "  <-- MORE THAN THE TEST ALLOWS"),
        flush=True,
    )
    return {"model": model_name, "relative_difference": rel}


def versions() -> dict:
    import importlib

    modules = ("torch", "torchvision", "keras", "tensorflow", "numpy", "jax", "flax")
    return {name: importlib.import_module(name).__version__ for name in modules} | {
        "python": platform.python_version(),
        "keras_backend": os.environ["KERAS_BACKEND"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", nargs="?", choices=sorted(FRAMEWORKS), help="default: both")
    parser.add_argument("models", nargs="*", help="our model names (default: every supported)")
    args = parser.parse_args(argv)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for framework in [args.framework] if args.framework else sorted(FRAMEWORKS, reverse=True):
        for model_name in args.models or FRAMEWORKS[framework][0]():
            write_golden(framework, model_name)
    arguments = sys.argv[1:] if argv is None else argv
    record = {
        "command": " ".join(["PYTHONPATH=. python tools/make_golden_logits.py", *arguments]),
        "versions": versions(),
    }
    (GOLDEN / "VERSIONS.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
