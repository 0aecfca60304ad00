"""Keras 3 `keras.applications` weights in our flax models give Keras's logits.

Keras is built offline (`weights=None`) and every weight and BatchNorm moving
statistic is randomised: Keras's initial BN (mean 0, variance 1, gamma 1, beta 0)
is nearly the identity and would hide a misplaced statistic or a wrong epsilon.
Logits are compared before the softmax (`classifier_activation=None`), as
max |ours - Keras| / max |Keras|.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before anything imports keras

import functools  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402  (a test dependency: pyproject's `test` extra)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnn_jax.weights import keras_files  # noqa: E402
from cnn_jax.weights import keras_import as ki  # noqa: E402

RTOL = 1e-4
SLOW_MODELS = [
    "vgg16",
    "vgg19",
    "resnet101",
    "resnet152",
    "inception_v3",
    "inception_resnet_v2",
    "xception",
    "densenet169",
    "densenet201",
    "mobilenet_v1",
]
BATCH = {"vgg16": 1, "vgg19": 1}  # 140M parameters: keep the activations small too


def random_value(layer_cls: str, name: str, shape: tuple, rng) -> np.ndarray:
    if name.endswith("kernel"):
        # He-normal keeps activations O(1) through the stack; a depthwise filter sees h*w inputs.
        depthwise = name == "depthwise_kernel" or layer_cls == "DepthwiseConv2D"
        fan_in = np.prod(shape[:2] if depthwise else shape[:-1])
        value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif name == "gamma":
        value = rng.uniform(0.5, 1.5, shape)
    elif name == "moving_variance":
        value = rng.uniform(0.5, 2.0, shape)
    else:  # bias, beta, moving_mean
        value = rng.normal(0.0, 0.1, shape)
    return value.astype(np.float32)


def random_keras(model_name: str, seed: int = 0, **kwargs):
    """Keras's application for `model_name` with random weights and BN statistics."""
    build = getattr(keras.applications, ki.keras_application(model_name))
    with keras.StatelessScope():  # skip Keras's own initialisation: every value is replaced
        model = build(weights=None, classifier_activation=None, **kwargs)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            w.assign(random_value(type(layer).__name__, w.name, tuple(w.shape), rng))
    return model


def relative_logit_difference(keras_model, module, variables, batch: int) -> float:
    size = keras_model.input_shape[1]
    x = np.random.default_rng(1).uniform(-1.0, 1.0, (batch, size, size, 3)).astype(np.float32)
    theirs = keras_model.predict(x, batch_size=batch, verbose=0)
    ours = np.asarray(jax.jit(functools.partial(module.apply, train=False))(variables, x))
    assert ours.shape == theirs.shape == (batch, 1000)
    assert np.abs(theirs).max() > 1e-3  # a dead network would compare nothing
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def check_model(model_name: str, batch: int = 2):
    keras_model = random_keras(model_name)
    module, variables = ki.load_keras_weights(model_name, keras_model)
    rel = relative_logit_difference(keras_model, module, variables, batch)
    print(f"{model_name}: max relative logit difference {rel:.2e}")
    assert rel < RTOL, f"{model_name}: logits differ from Keras's by {rel:.2e} (relative)"
    return keras_model, module, variables


def same_tree(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.fixture(scope="module")
def keras_resnet50():
    return random_keras("resnet50")


def test_resnet50_logits_equal_keras_and_weights_file_gives_same_variables(keras_resnet50, tmp_path):
    module, variables = ki.load_keras_weights("resnet50", keras_resnet50)
    assert module.bn_epsilon == 1.001e-5 and module.num_classes == 1000
    rel = relative_logit_difference(keras_resnet50, module, variables, batch=2)
    print(f"resnet50: max relative logit difference {rel:.2e}")
    assert rel < RTOL
    # Keras's conv bias went into the next BN's mean: BN(z + b; m) = BN(z; m - b).
    bias = keras_resnet50.get_layer("conv1_conv").bias.numpy()
    mean = keras_resnet50.get_layer("conv1_bn").moving_mean.numpy()
    np.testing.assert_array_equal(variables["batch_stats"]["stem"]["bn"]["mean"], mean - bias)
    assert "bias" not in variables["params"]["stem"]["conv"]

    path = tmp_path / "x.weights.h5"
    keras_resnet50.save_weights(path)
    file_module, from_file = ki.load_keras_weights("resnet50", path)
    assert file_module == module
    assert same_tree(from_file, variables)


def test_densenet121_logits_equal_keras():
    _, module, variables = check_model("densenet121")
    assert module.bn_epsilon == 1.001e-5
    assert variables["params"]["predictions"]["kernel"].shape == (1024, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", SLOW_MODELS)
def test_logits_equal_keras(model_name):
    check_model(model_name, BATCH.get(model_name, 2))
    keras.backend.clear_session()  # free the Keras model before the next one


def save_keras_2_h5(model, path):
    """The Keras 2 layout of the published keras.applications weight files."""
    import h5py

    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, model)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".weights.h5", ".h5"])
def test_saved_files_with_other_class_counts(tmp_path, suffix):
    model = random_keras("mobilenet_v1", classes=10)
    _, live = ki.load_keras_weights("mobilenet_v1", model)
    path = tmp_path / f"x{suffix}"
    save = {".keras": model.save, ".weights.h5": model.save_weights, ".h5": functools.partial(save_keras_2_h5, model)}[
        suffix
    ]
    save(path)
    assert keras_files.saved_num_classes(path) == 10
    module, from_file = ki.load_keras_weights("mobilenet_v1", path)
    assert module.num_classes == 10 and same_tree(from_file, live)


def test_keras_application_names():
    assert [
        ki.keras_application(n)
        for n in (
            "vgg16",
            "resnet152",
            "inception_v3",
            "inception_resnet_v2",
            "xception",
            "densenet201",
            "mobilenet_v1",
        )
    ] == ["VGG16", "ResNet152", "InceptionV3", "InceptionResNetV2", "Xception", "DenseNet201", "MobileNet"]
    assert len(ki.supported_models()) == 12
    with pytest.raises(ki.KerasImportError, match="no Keras counterpart"):
        ki.keras_application("alexnet")


@pytest.fixture(scope="module")
def keras_mobilenet():
    return random_keras("mobilenet_v1")  # the quickest to build: for the error checks


def test_missing_extra_and_misshapen_tensors_are_named(keras_mobilenet):
    layers = ki.keras_layers(keras_mobilenet)
    assert len(layers) == 27 + 27 + 1  # convs, BNs, classifier
    without_bn = [layer for layer in layers if layer.name != "conv_pw_3_bn"]
    with pytest.raises(ki.KerasImportError, match="missing: 4 of ours received nothing") as e:
        ki.convert_keras_layers("mobilenet_v1", without_bn)
    assert "batch_stats/conv_pw_3_bn/mean" in str(e.value)
    assert "params/conv_pw_3_bn/scale" in str(e.value)

    kernel = {"kernel": np.zeros((1, 1, 3, 3), np.float32)}
    unnamed = ki.KerasLayer("my_head", "Conv2D", kernel, None)
    with pytest.raises(ki.KerasImportError, match="'my_head' .Conv2D. has no module in ours"):
        ki.convert_keras_layers("mobilenet_v1", layers + [unnamed])
    stray = ki.KerasLayer("conv_pw_14", "Conv2D", kernel, None)
    with pytest.raises(ki.KerasImportError, match="extra: conv_pw_14/kernel -> params/conv_pw_14/kernel"):
        ki.convert_keras_layers("mobilenet_v1", layers + [stray])

    with pytest.raises(
        ki.KerasImportError,
        match=r"conv_preds/kernel is \(1, 1, 1024, 1000\), "
        r"params/conv_preds/kernel is \(1, 1, 1024, 10\)",
    ):
        ki.convert_keras_layers("mobilenet_v1", layers, num_classes=10)

    with pytest.raises(ki.KerasImportError, match="epsilon of conv1_bn is 1e-05, Keras's conv1_bn uses 0.001"):
        ki.load_keras_weights("mobilenet_v1", keras_mobilenet, bn_epsilon=1e-5)


def test_depthwise_kernel_layout_matches_keras():
    """Depth multiplier 2: Keras's output channel c*2 + j is filter j of input channel c."""
    import flax.linen as nn

    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False)
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 3)).astype(np.float32)
    theirs = np.asarray(layer(x))
    kernel = ki.depthwise_kernel(layer.kernel.numpy())
    assert kernel.shape == (3, 3, 1, 6)
    ours = nn.Conv(6, (3, 3), padding=((1, 1), (1, 1)), feature_group_count=3, use_bias=False).apply(
        {"params": {"kernel": kernel}}, x
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(ki.KerasImportError, match="No Keras weights file"):
        ki.load_keras_weights("resnet50", tmp_path / "nope.weights.h5")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ki.KerasImportError, match="not a Keras weights file"):
        ki.load_keras_weights("resnet50", tmp_path / "w.npz")
