"""Our logits equal torchvision's and Keras's for every architecture our importers support,
with neither installed.

`tests/golden/<framework>_<model>.npz` holds the reference framework's logits for weights and
an input drawn with numpy from a recipe stored beside them (`tools/make_golden_logits.py`
ran torchvision's and Keras's models to write them). Here the same arrays are drawn again
from the recipe and go through our importers, as the reference framework laid them out:
a torchvision state dict of numpy arrays into `load_torchvision_weights`, Keras's weighted
layers as arrays into `convert_keras_layers`. Logits are compared before the softmax as
max |ours - reference| / max |reference|. VGG's and AlexNet's goldens have 64-unit hidden FC
layers, which the recipe's `ours` passes on as `fc_features`.

Each model is compiled once, with XLA's backend (LLVM) optimisations off: a DenseNet then
compiles in about a third of the time, and the logits stay as close to the reference's
(DenseNet-161: 5.5e-7 relative, 6.1e-7 with the default compile).
"""

import functools
import json
import pathlib

import jax
import numpy as np
import pytest

from cnn_jax.weights import keras_import as ki
from cnn_jax.weights import torch_import as ti

GOLDEN = pathlib.Path(__file__).with_name("golden")
RTOL = 1e-4
FAST_COMPILE = {"xla_backend_optimization_level": 0}
FRAMEWORKS = {"torch": ti.supported_models(), "keras": ki.supported_models()}


def read_golden(framework: str, model_name: str) -> tuple:
    """(recipe, reference logits)."""
    with np.load(GOLDEN / f"{framework}_{model_name}.npz", allow_pickle=False) as golden:
        return json.loads(str(golden["recipe"])), golden["logits"]


def draw(rng, shape, low: float, high: float) -> np.ndarray:
    """The recipe's one rule: uniform in [low, high) from float64 draws, as float32."""
    return (low + (high - low) * rng.random(tuple(shape))).astype(np.float32)


def golden_input(recipe: dict) -> np.ndarray:
    spec = recipe["input"]  # NHWC
    return draw(np.random.default_rng(spec["seed"]), spec["shape"], spec["low"], spec["high"])


def torch_state(recipe: dict) -> dict:
    """torchvision's state dict, key by key in its order, as numpy arrays."""
    rng = np.random.default_rng(recipe["seed"])
    return {
        key: np.array(low, np.int64) if dtype == "int64" else draw(rng, shape, low, high)
        for key, shape, dtype, low, high in recipe["tensors"]
    }


def keras_layers(recipe: dict) -> list:
    """Keras's weighted layers, in the order `keras_import.keras_layers` reads a live model."""
    rng = np.random.default_rng(recipe["seed"])
    return [
        ki.KerasLayer(name, cls, {var: draw(rng, shape, low, high) for var, shape, low, high in tensors}, epsilon)
        for name, cls, epsilon, tensors in recipe["layers"]
    ]


def our_options(recipe: dict) -> dict:
    """Our model's options for the golden's network (`fc_features` for narrow VGGs)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in recipe["ours"].items()}


def our_logits(module, variables, x: np.ndarray) -> np.ndarray:
    apply = jax.jit(functools.partial(module.apply, train=False))
    return np.asarray(apply.lower(variables, x).compile(FAST_COMPILE)(variables, x))


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def assert_informative(logits: np.ndarray) -> None:
    """Logits that differ across classes and inputs: a dead or saturated network would let a
    misplaced tensor pass. The two inputs are noise of one distribution, so after global
    pooling their logits share most of their value; their own parts must still be 100 times
    the tolerance."""
    scale = np.abs(logits).max()
    assert np.isfinite(logits).all() and scale > 1e-3
    assert logits.std(axis=1).min() > 0.05 * scale
    assert np.abs(logits[0] - logits[1]).max() > 100 * RTOL * scale


def torch_case(model_name: str) -> tuple:
    """(module, variables, input, reference logits) of a torchvision golden."""
    recipe, logits = read_golden("torch", model_name)
    assert (recipe["model"], recipe["architecture"]) == (model_name, ti.torchvision_architecture(model_name))
    module, variables = ti.load_torchvision_weights(model_name, torch_state(recipe), **our_options(recipe))
    return module, variables, golden_input(recipe), logits


def keras_case(model_name: str) -> tuple:
    """(module, variables, input, reference logits) of a Keras golden."""
    recipe, logits = read_golden("keras", model_name)
    assert (recipe["model"], recipe["application"]) == (model_name, ki.keras_application(model_name))
    module, variables = ki.convert_keras_layers(
        model_name, keras_layers(recipe), num_classes=recipe["kwargs"]["classes"], **our_options(recipe)
    )
    return module, variables, golden_input(recipe), logits


@pytest.mark.parametrize("model_name", FRAMEWORKS["torch"])
def test_logits_equal_torchvision(model_name):
    module, variables, x, logits = torch_case(model_name)
    assert_informative(logits)
    rel = relative_difference(our_logits(module, variables, x), logits)
    print(f"{model_name}: max relative logit difference {rel:.2e} at {x.shape}")
    assert rel < RTOL, f"{model_name}: logits differ from torchvision's by {rel:.2e} (relative)"


@pytest.mark.parametrize("model_name", FRAMEWORKS["keras"])
def test_logits_equal_keras(model_name):
    module, variables, x, logits = keras_case(model_name)
    assert_informative(logits)
    rel = relative_difference(our_logits(module, variables, x), logits)
    print(f"{model_name}: max relative logit difference {rel:.2e} at {x.shape}")
    assert rel < RTOL, f"{model_name}: logits differ from Keras's by {rel:.2e} (relative)"


def test_goldens_are_the_supported_models_and_small():
    files = {p.name: p.stat().st_size for p in GOLDEN.glob("*.npz")}
    assert sorted(files) == sorted(
        f"{framework}_{name}.npz" for framework, names in FRAMEWORKS.items() for name in names
    )
    assert max(files.values()) < 64_000  # recipes and logits only: no weights, no inputs
    versions = json.loads((GOLDEN / "VERSIONS.json").read_text())
    assert {"torch", "torchvision", "keras", "tensorflow", "numpy"} <= set(versions["versions"])


def test_a_misplaced_batchnorm_statistic_shows():
    """The goldens can tell one BatchNorm's mean and variance swapped, deep in the network."""
    recipe, logits = read_golden("torch", "resnet18")
    state = torch_state(recipe)
    bn = "layer4.1.bn1"
    state[f"{bn}.running_mean"], state[f"{bn}.running_var"] = state[f"{bn}.running_var"], state[f"{bn}.running_mean"]
    module, variables = ti.load_torchvision_weights("resnet18", state)
    assert relative_difference(our_logits(module, variables, golden_input(recipe)), logits) > 1e-3


def test_inception_v3_average_pools_that_skip_the_padding_miss_torchvisions_logits():
    """torchvision's 3x3 average pools count the zero padding, Keras's do not: the golden
    tells the two apart."""
    module, variables, x, logits = torch_case("inception_v3")
    keras_pools = module.clone(pool_count_include_pad=False)
    assert relative_difference(our_logits(keras_pools, variables, x), logits) > 1e-2
