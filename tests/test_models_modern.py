"""Inception-v3, Inception-ResNet-v2, Xception, DenseNet and MobileNet v1: counts, shapes,
variants and the Keras layout details that weight transfer depends on."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_checks import check_params_and_macs, native_shape, output_shape

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.models import inception_v3 as iv3
from cnn_jax.report.summary import summarize

NAMES = [
    "inception_v3",
    "inception_resnet_v2",
    "xception",
    "densenet121",
    "densenet169",
    "densenet201",
    "densenet161",
    "mobilenet_v1",
]


@pytest.mark.parametrize("name", NAMES)
def test_params_and_macs_equal_the_reference_exactly(name):
    s = check_params_and_macs(name)
    assert s.output_shape == (1, 1000)


def test_inception_v3_keras_bn_without_gamma():
    # Keras InceptionV3 trainable params: torchvision's 23,834,568 minus one gamma per BN channel.
    s = summarize(models.create_model("inception_v3", bn_scale=False), native_shape("inception_v3"))
    assert s.total_params == 23_817_352 == 23_834_568 - 17_216


def test_inception_v3_aux_head_params_exist_in_training_init():
    # torchvision aux_logits=True: + conv0 768*128 + 2*128, conv1 5*5*128*768 + 2*768,
    # fc 768*1000 + 1000 = 3,326,696.
    s = summarize(models.create_model("inception_v3"), native_shape("inception_v3"), train=True)
    assert s.total_params == 27_161_264 == 23_834_568 + 3_326_696
    aux_rows = {r.path: r.params for r in s.rows if r.path.startswith("aux/")}
    assert aux_rows == {
        "aux/conv0/conv": 98_304,
        "aux/conv0/bn": 256,
        "aux/conv1/conv": 2_457_600,
        "aux/conv1/bn": 1_536,
        "aux/fc": 769_000,
    }


def _train_outputs(model, shape):
    """Abstract init and apply in training mode (aux heads are created by a training init)."""
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}

    def run(x):
        variables = model.init(rngs, x, train=True)
        return model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])

    return jax.eval_shape(run, jax.ShapeDtypeStruct(shape, jnp.float32))


def test_inception_v3_returns_aux_logits_only_in_training():
    (logits, aux), state = _train_outputs(models.create_model("inception_v3", num_classes=10), (2, 299, 299, 3))
    assert logits.shape == aux.shape == (2, 10) and logits.dtype == aux.dtype == jnp.float32
    assert "aux" in state["batch_stats"]
    assert output_shape("inception_v3", 10, train=False).shape == (2, 10)


def test_inception_v3_without_aux_head_returns_logits_in_training():
    model = models.create_model("inception_v3", num_classes=5, aux_logits=False)
    logits, _ = _train_outputs(model, (1, 299, 299, 3))
    assert logits.shape == (1, 5)


def test_inception_v3_aux_head_below_299_is_a_clear_error():
    with pytest.raises(UserError, match="aux_logits=False"):
        _train_outputs(models.create_model("inception_v3"), (1, 298, 298, 3))
    logits, _ = _train_outputs(
        models.create_model("inception_v3", aux_logits=False), (1, 75, 75, 3)
    )  # Keras's minimum input size
    assert logits.shape == (1, 1000)


@pytest.mark.parametrize(
    "name,classes",
    [
        ("inception_v3", 17),
        ("inception_resnet_v2", 5),
        ("xception", 10),
        ("densenet121", 100),
        ("densenet161", 3),
        ("mobilenet_v1", 37),
    ],
)
def test_output_shapes_other_class_counts(name, classes):
    out = output_shape(name, classes)
    assert out.shape == (2, classes) and out.dtype == jnp.float32


def test_mobilenet_width_multiplier_half():
    # alpha=0.5 (paper Table 6: 1.3M params, 149M mult-adds): widths 16, 32, 64, 64, 128, 128,
    # 256 x6, 512, 512. conv1 3*3*3*16 + BN 32 = 464; depthwise 9 * 2,480 input maps = 22,320
    # + BN 4,960; pointwise 784,896 + BN 5,952; classifier 512*1000 + 1000 = 513,000.
    # The body shrinks ~4x (its weights are mostly pointwise, ~alpha^2), the classifier 2x.
    s = summarize(models.create_model("mobilenet_v1", alpha=0.5), native_shape("mobilenet_v1"))
    assert s.total_params == 464 + 22_320 + 4_960 + 784_896 + 5_952 + 513_000 == 1_331_592
    assert s.total_macs == 149_497_088
    assert s.total_params < 4_231_976


def test_inception_branch_names_follow_tf_slim():
    ops = iv3.BLOCK_E[2][1]
    assert iv3.branch_names("branch3x3dbl", ops) == [
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        ("branch3x3dbl_3a", "branch3x3dbl_3b"),
    ]
    assert iv3.branch_names("branch_pool", iv3.block_a(32)[3][1]) == [None, "branch_pool"]


def test_inception_pool_branch_averages_only_valid_taps():
    # Keras/TF 'same' average pooling divides a corner by its 4 valid taps, not by 9.
    y = iv3.apply_op(None, iv3.AVG, None, jnp.ones((1, 5, 5, 1)), False)
    assert float(y[0, 0, 0, 0]) == 1.0


def _param_shapes(name, **kw):
    model = models.create_model(name, **kw)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(native_shape(name))))


def test_inception_resnet_v2_keras_layer_details():
    v = _param_shapes("inception_resnet_v2")
    p = v["params"]
    # the up-projection restores the block width and has a bias; conv-BN units have no gamma
    assert jax.tree.map(lambda a: a.shape, p["block35_1"]["conv"]) == {"kernel": (1, 1, 128, 320), "bias": (320,)}
    assert jax.tree.map(lambda a: a.shape, p["block8_10"]["conv"])["kernel"] == (1, 1, 448, 2080)
    assert set(p["conv_7b"]["bn"]) == {"bias"}
    assert sum(1 for k in p if k.startswith("block35_")) == 10
    assert sum(1 for k in p if k.startswith("block17_")) == 20
    assert sum(1 for k in p if k.startswith("block8_")) == 10


def test_densenet_module_names_are_keras_names():
    p = _param_shapes("densenet121")["params"]
    leaves = jax.tree_util.tree_leaves_with_path(p)
    flat = {"_".join(k.key for k in path[:-1]) for path, _ in leaves}
    assert {
        "conv1_conv",
        "conv1_bn",
        "conv2_block1_0_bn",
        "conv2_block1_1_conv",
        "conv2_block6_2_conv",
        "pool2_bn",
        "pool2_conv",
        "conv5_block16_2_conv",
        "bn",
        "predictions",
    } <= flat
    assert p["conv2_block6"]["2_conv"]["kernel"].shape == (3, 3, 128, 32)
    assert p["pool4"]["conv"]["kernel"].shape == (1, 1, 1024, 512)  # compression 0.5


def test_bn_epsilons_follow_the_reference_implementation():
    eps = {name: models.create_model(name).bn_epsilon for name in NAMES}
    assert eps == {
        "inception_v3": 1e-3,
        "inception_resnet_v2": 1e-3,
        "xception": 1e-3,
        "densenet121": 1.001e-5,
        "densenet169": 1.001e-5,
        "densenet201": 1.001e-5,
        "densenet161": 1e-5,
        "mobilenet_v1": 1e-3,
    }


def _he_variables(model, shape, seed=0):
    """Variables with He-normal kernels, unit BN scales and statistics, zero biases: drawn with
    numpy because compiling `model.init`'s threefry draws alone is slow on a CPU."""
    rng = np.random.default_rng(seed)
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))

    def fill(path, leaf):
        key = path[-1].key
        if key == "kernel":
            std = np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.normal(0.0, std, leaf.shape), jnp.float32)
        return jnp.ones(leaf.shape) if key in ("scale", "var") else jnp.zeros(leaf.shape)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def test_mobilenet_bfloat16_compute_float32_params():
    model = models.create_model("mobilenet_v1", num_classes=10, alpha=0.25, dtype=jnp.bfloat16)
    model32 = models.create_model("mobilenet_v1", num_classes=10, alpha=0.25)
    x = jax.random.uniform(jax.random.key(3), (2, 32, 32, 3))
    variables = _he_variables(model, x.shape)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    jaxpr = jax.make_jaxpr(model.apply)(variables, x)
    conv_dtypes = {e.invars[0].aval.dtype for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"}
    assert conv_dtypes == {jnp.dtype(jnp.bfloat16)}
    logits, logits32 = jax.jit(lambda v, x: (model.apply(v, x), model32.apply(v, x)))(variables, x)
    assert logits.dtype == jnp.float32 and logits.shape == (2, 10)
    scale = float(jnp.abs(logits32).max())
    assert scale > 0 and float(jnp.abs(logits - logits32).max()) < 0.05 * scale


# --- Keras equivalence (slow): same weights, same logits --------------------------------------
# Each case: our name and options, the keras.applications function and its options. Keras layers
# are taken in creation order (its `model.layers` is topological, not creation order), which is
# the order our modules are called in; every weight is copied and shape-checked, so this also
# compares the parameter count layer by layer.
KERAS_CASES = [
    ("mobilenet_v1", {}, "MobileNet", {}),
    ("mobilenet_v1", {"alpha": 0.5}, "MobileNet", {"alpha": 0.5}),
    ("densenet121", {}, "DenseNet121", {}),
    ("densenet169", {}, "DenseNet169", {}),
    ("densenet201", {}, "DenseNet201", {}),
    ("xception", {}, "Xception", {}),
    ("inception_v3", {"bn_scale": False}, "InceptionV3", {}),
    ("inception_resnet_v2", {}, "InceptionResNetV2", {}),
]


def _keras_model_and_layers(fn_name, **kw):
    """The Keras model and its weighted layers in the order they were created."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    created, original_init = [], keras.layers.Layer.__init__

    def tracking_init(self, *args, **kwargs):
        created.append(self)
        original_init(self, *args, **kwargs)

    keras.layers.Layer.__init__ = tracking_init
    try:
        model = getattr(keras.applications, fn_name)(weights=None, classifier_activation=None, **kw)
    finally:
        keras.layers.Layer.__init__ = original_init
    in_model = {id(layer) for layer in model.layers}
    seen, layers = set(), []
    for layer in created:
        if id(layer) in in_model and id(layer) not in seen and layer.weights:
            seen.add(id(layer))
            layers.append(layer)
    return model, layers


def _calibrate_keras_bn(model, layers, x, rng):
    """Random BN gammas and betas, and moving statistics set to the batch statistics of `x`
    (one training-mode call with momentum 0): the activations then stay normalised through
    the whole net, so the logits depend on every padding and alignment detail. (With
    unit statistics they blow up and saturate, and the logits hardly depend on the input.)"""
    bns = [layer for layer in layers if type(layer).__name__ == "BatchNormalization"]
    for layer in bns:
        c = layer.beta.shape
        layer.beta.assign(rng.normal(0, 0.2, c).astype("float32"))
        if layer.gamma is not None:
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
        layer.momentum = 0.0
    model(x, training=True)
    for layer in bns:
        layer.momentum = 0.99


def _keras_to_flax(layers, rows):
    """Copy Keras weights into a flax variables dict, pairing layers with our layer rows."""
    from keras import ops

    numpy = lambda v: np.asarray(ops.convert_to_numpy(v))
    variables = {"params": {}, "batch_stats": {}}
    rows = iter(rows)

    def put(collection, row, leaves):
        node = variables[collection]
        for key in row.path.split("/"):
            node = node.setdefault(key, {})
        node.update(leaves)

    def depthwise(kernel):  # Keras (kh, kw, C, 1) -> flax grouped conv (kh, kw, 1, C)
        k = numpy(kernel)
        return k.reshape(k.shape[0], k.shape[1], 1, k.shape[2] * k.shape[3])

    for layer in layers:
        kind = type(layer).__name__
        if kind == "SeparableConv2D":
            put("params", next(rows), {"kernel": depthwise(layer.depthwise_kernel)})
            put("params", next(rows), {"kernel": numpy(layer.pointwise_kernel)})
        elif kind == "DepthwiseConv2D":
            put("params", next(rows), {"kernel": depthwise(layer.kernel)})
        elif kind in ("Conv2D", "Dense"):
            leaves = {"kernel": numpy(layer.kernel)}
            if layer.bias is not None:
                leaves["bias"] = numpy(layer.bias)
            put("params", next(rows), leaves)
        elif kind == "BatchNormalization":
            row = next(rows)
            leaves = {"bias": numpy(layer.beta)}
            if layer.gamma is not None:
                leaves["scale"] = numpy(layer.gamma)
            put("params", row, leaves)
            put("batch_stats", row, {"mean": numpy(layer.moving_mean), "var": numpy(layer.moving_variance)})
        else:
            raise AssertionError(f"unexpected Keras layer {layer.name} ({kind})")
    assert next(rows, None) is None, "our model has more weighted layers than Keras's"
    return variables


@pytest.mark.slow
@pytest.mark.parametrize("name,kw,keras_fn,keras_kw", KERAS_CASES, ids=[f"{c[0]}{c[1] or ''}" for c in KERAS_CASES])
def test_same_weights_give_keras_logits(name, kw, keras_fn, keras_kw):
    keras_model, layers = _keras_model_and_layers(keras_fn, **keras_kw)
    rng = np.random.default_rng(0)
    shape = native_shape(name, batch=2)
    _calibrate_keras_bn(keras_model, layers, rng.normal(0, 1, shape).astype("float32"), rng)
    model = models.create_model(name, **kw)
    s = summarize(model, shape)
    assert s.total_params == sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    variables = _keras_to_flax(layers, [r for r in s.rows if r.params])
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
    assert jax.tree.map(lambda a: a.shape, variables) == jax.tree.map(lambda a: a.shape, dict(expected))

    x = rng.normal(0, 1, shape).astype("float32")
    want = np.asarray(keras_model(x, training=False))
    got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x)))
    scale = np.abs(want).max()
    assert scale > 1e-3 and np.isfinite(want).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale + 1e-6)
