"""AlexNet, ZFNet, VGG and GoogLeNet: counts against reference.json, shapes, and the details
that make each the paper's network (towers, LRN placement, dense evaluation, aux heads)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_checks import check_params_and_macs, native_shape, output_shape

from cnn_jax import layers, models
from cnn_jax.errors import UserError
from cnn_jax.models import googlenet, vgg
from cnn_jax.report.summary import summarize

CLASSIC = [
    "alexnet",
    "alexnet_owt",
    "zfnet",
    "vgg11",
    "vgg11_lrn",
    "vgg13",
    "vgg16_c",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "googlenet",
]
RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}


def module_calls(model, shape, train=False, dtype=jnp.float32):
    """(path, class name, output shape, output dtype) of every module call, in call order."""
    calls = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and hasattr(out, "shape"):
            calls.append(("/".join(context.module.path), type(context.module).__name__, tuple(out.shape), out.dtype))
        return out

    def run():
        with nn.intercept_methods(record):
            return model.init_with_output(RNGS, jnp.zeros(shape, dtype), train=train)

    out, variables = jax.eval_shape(run)
    return calls, out, variables


def param_shapes(variables):
    return jax.tree.map(lambda v: v.shape, variables["params"])


@pytest.mark.parametrize("name", CLASSIC)
def test_params_and_macs_equal_the_reference_exactly(name):
    check_params_and_macs(name)


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("classes", [1000, 17])
def test_output_shape_at_native_size(name, classes):
    out = output_shape(name, classes)
    assert out.shape == (2, classes) and out.dtype == jnp.float32


def test_native_input_sizes():
    sizes = {n: models.get_spec(n).input_size for n in CLASSIC}
    assert sizes.pop("alexnet") == 227 and set(sizes.values()) == {224}


# ---------------------------------------------------------------- AlexNet, ZFNet


def test_alexnet_towers_are_grouped_convs():
    _, _, variables = module_calls(models.create_model("alexnet"), native_shape("alexnet"))
    shapes = param_shapes(variables)
    # conv2/4/5 see only their own tower's half of the maps; conv3 and the FCs see both.
    assert shapes["conv2"]["kernel"] == (5, 5, 48, 256)
    assert shapes["conv3"]["kernel"] == (3, 3, 256, 384)
    assert shapes["conv4"]["kernel"] == (3, 3, 192, 384)
    assert shapes["conv5"]["kernel"] == (3, 3, 192, 256)
    assert shapes["fc6"]["kernel"] == (6 * 6 * 256, 4096)


def test_alexnet_layer_order_and_map_sizes():
    calls, _, _ = module_calls(models.create_model("alexnet"), native_shape("alexnet"))
    order = [(path, shape[1]) for path, kind, shape, _ in calls if path and kind in ("Conv", "LRN")]
    # LRN follows conv1 and conv2 (before their pools); 227 input gives the paper's 55x55.
    assert order == [
        ("conv1", 55),
        ("lrn1", 55),
        ("conv2", 27),
        ("lrn2", 27),
        ("conv3", 13),
        ("conv4", 13),
        ("conv5", 13),
    ]


def test_alexnet_paper_initial_biases():
    # Read each layer's bias initialiser off the modules (an eager init of 61M weights is slow).
    layers = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, (nn.Conv, nn.Dense)):
            layers[context.module.name] = context.module.bias_init
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(models.create_model("alexnet").init, RNGS, jnp.zeros((1, 227, 227, 3)))
    bias = {k: float(init(jax.random.key(0), (1,))[0]) for k, init in layers.items()}
    assert bias == {
        "conv1": 0.0,
        "conv2": 1.0,
        "conv3": 0.0,
        "conv4": 1.0,
        "conv5": 1.0,
        "fc6": 1.0,
        "fc7": 1.0,
        "fc8": 0.0,
    }


def test_zfnet_map_sizes_are_fig3():
    calls, _, variables = module_calls(models.create_model("zfnet"), native_shape("zfnet"))
    conv_sizes = [shape[1] for path, kind, shape, _ in calls if kind == "Conv"]
    lrn_sizes = [shape[1] for path, kind, shape, _ in calls if kind == "LRN"]
    assert conv_sizes == [110, 26, 13, 13, 13]
    assert lrn_sizes == [55, 13]  # normalised after pooling (Fig. 3 caption)
    assert param_shapes(variables)["fc6"]["kernel"] == (6 * 6 * 256, 4096)


def test_alexnet_owt_adaptive_pool_accepts_other_sizes():
    model = models.create_model("alexnet_owt", num_classes=10)
    _, out, variables = module_calls(model, (1, 256, 256, 3))
    assert out.shape == (1, 10) and param_shapes(variables)["fc6"]["kernel"] == (9216, 4096)


def test_lrn_is_the_paper_formula():
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 3, 3, 7)), np.float32)
    y = np.asarray(layers.LRN(size=5, alpha=1e-2, beta=0.75, k=2.0).apply({}, x))
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (2, 2)))
    window = sum(sq[..., i : i + 7] for i in range(5))  # maps i-2..i+2, clipped at the ends
    np.testing.assert_allclose(y, x / (2.0 + 1e-2 * window) ** 0.75, rtol=1e-6)


def test_adaptive_avg_pool_matches_torch_windows():
    x = jnp.arange(8.0).reshape(1, 8, 1, 1) * jnp.ones((1, 8, 8, 1))
    y = layers.adaptive_avg_pool(x, 7)
    # torch: 8 -> 7 windows [floor(8i/7), ceil(8(i+1)/7)) = [0,2),[1,3),...,[6,8)
    np.testing.assert_allclose(np.asarray(y[0, :, 0, 0]), np.arange(7) + 0.5)
    np.testing.assert_array_equal(layers.adaptive_avg_pool(x[:, :7, :7], 7), x[:, :7, :7])


# ---------------------------------------------------------------- VGG


def test_vgg_lrn_follows_conv1_only_in_a_lrn():
    calls, _, with_lrn = module_calls(models.create_model("vgg11_lrn"), native_shape("vgg11_lrn"))
    _, _, plain = module_calls(models.create_model("vgg11"), native_shape("vgg11"))
    order = [(path, shape) for path, kind, shape, _ in calls if kind in ("Conv", "LRN")]
    assert order[:3] == [("conv1_1", (1, 224, 224, 64)), ("lrn1", (1, 224, 224, 64)), ("conv2_1", (1, 112, 112, 128))]
    assert sum(kind == "LRN" for _, kind, _, _ in calls) == 1
    assert param_shapes(with_lrn) == param_shapes(plain)  # A-LRN has A's parameters


def test_vgg_configs_are_table_1():
    weight_layers = {k: sum(e != "M" and e != "LRN" for e in c) + 3 for k, c in vgg.CONFIGS.items()}
    assert weight_layers == {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}
    c, d = vgg.CONFIGS["C"], vgg.CONFIGS["D"]
    assert [e for e in c if isinstance(e, tuple)] == [(256, 1), (512, 1), (512, 1)]
    assert [e[0] if isinstance(e, tuple) else e for e in c] == list(d)


def test_vgg_bn_puts_batchnorm_after_every_conv():
    _, _, variables = module_calls(models.create_model("vgg16_bn"), native_shape("vgg16_bn"))
    convs = {k: v for k, v in variables["params"].items() if k.startswith("conv")}
    assert len(convs) == 13
    assert all(set(v) == {"conv", "bn"} and "bias" in v["conv"] for v in convs.values())
    assert len(variables["batch_stats"]) == 13


def _tiny_vgg(**kw):
    # Table-1 shape (five pools: 224 -> 7x7 before FC6) with narrow widths, cheap enough to run.
    return vgg.VGG((8, "M", 8, "M", 16, "M", 16, "M", 16, "M"), num_classes=5, fc_features=(32, 24), **kw)


def _numpy_init(model, shape):
    """He-scaled random parameters from numpy: compiling JAX's random initialisers costs seconds."""
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
    rng = np.random.default_rng(0)
    std = lambda a: np.sqrt(2.0 / np.prod(a.shape[:-1])) if a.ndim > 1 else 0.1
    return jax.tree.map(lambda a: rng.normal(0.0, std(a), a.shape).astype(np.float32), abstract)


def test_vgg_dense_evaluation_equals_classifier_at_224():
    x = jax.random.normal(jax.random.key(4), (2, 224, 224, 3))
    variables = _numpy_init(_tiny_vgg(), x.shape)
    dense = _tiny_vgg().apply(variables, x)
    conv = _tiny_vgg(fully_convolutional=True).apply(variables, x)
    assert dense.shape == conv.shape == (2, 5)
    assert np.abs(np.asarray(dense)).max() > 1e-3  # not trivially zero
    np.testing.assert_allclose(np.asarray(conv), np.asarray(dense), rtol=1e-4, atol=1e-5)


def test_vgg_dense_evaluation_at_320_averages_a_4x4_score_map():
    x = jax.random.normal(jax.random.key(5), (1, 320, 320, 3))
    variables = _numpy_init(_tiny_vgg(), (1, 224, 224, 3))  # the 224 classifier's parameters
    logits, state = _tiny_vgg(fully_convolutional=True).apply(variables, x, capture_intermediates=True)
    score_map = state["intermediates"]["fc8"]["__call__"][0]
    assert score_map.shape == (1, 4, 4, 5)  # 320/32 = 10 positions, 10 - 7 + 1 = 4
    assert np.asarray(score_map).std(axis=(1, 2)).min() > 0  # positions see different windows
    np.testing.assert_allclose(np.asarray(logits), np.asarray(score_map.mean(axis=(1, 2))), rtol=1e-6)


@pytest.mark.slow
def test_vgg11_dense_evaluation_equals_classifier_full_size():
    x = jax.random.normal(jax.random.key(6), (1, 224, 224, 3))
    model = models.create_model("vgg11")
    variables = _numpy_init(model, x.shape)
    dense = model.apply(variables, x)
    conv = models.create_model("vgg11", fully_convolutional=True).apply(variables, x)
    assert np.asarray(dense).std() > 0.1
    np.testing.assert_allclose(np.asarray(conv), np.asarray(dense), rtol=1e-3, atol=1e-4)


def test_vgg16_fully_convolutional_shares_parameters():
    _, out_fc, fc_vars = module_calls(models.create_model("vgg16", fully_convolutional=True), (1, 320, 320, 3))
    _, out, dense_vars = module_calls(models.create_model("vgg16"), (1, 224, 224, 3))
    assert out_fc.shape == out.shape == (1, 1000)
    assert param_shapes(fc_vars) == param_shapes(dense_vars)
    assert (
        summarize(models.create_model("vgg16", fully_convolutional=True), (1, 224, 224, 3)).total_macs == 15_470_264_320
    )


def test_vgg_fully_convolutional_refuses_small_inputs():
    with pytest.raises(UserError, match="at least 224x224"):
        module_calls(_tiny_vgg(fully_convolutional=True), (1, 192, 192, 3))


def test_vgg_classifier_mode_pools_other_sizes_to_7x7():
    _, out, variables = module_calls(models.create_model("vgg11", num_classes=10), (1, 256, 256, 3))
    assert out.shape == (1, 10) and param_shapes(variables)["fc6"]["kernel"] == (7 * 7 * 512, 4096)


# ---------------------------------------------------------------- GoogLeNet


def test_googlenet_aux_heads_in_training():
    model = models.create_model("googlenet", num_classes=17)
    x = jnp.zeros((2, 224, 224, 3))

    def run():
        variables = model.init(RNGS, x, train=True)
        train_out = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
        return train_out, model.apply(variables, x, train=False)

    (logits, aux1, aux2), eval_out = jax.eval_shape(run)
    assert logits.shape == aux1.shape == aux2.shape == eval_out.shape == (2, 17)
    assert {a.dtype for a in (logits, aux1, aux2)} == {jnp.dtype(jnp.float32)}
    assert googlenet.AUX_LOSS_WEIGHT == 0.3


def test_googlenet_params_with_aux_heads():
    s = summarize(models.create_model("googlenet"), (1, 224, 224, 3), train=True)
    assert s.total_params == 13_378_280
    aux = {r.path: r.params for r in s.rows if r.path.startswith("aux")}
    # 1x1 conv 512->128 (528->128 for 4d), FC 2048->1024, classifier 1024->1000.
    assert aux == {
        "aux1/conv": 65_664,
        "aux1/fc": 2_098_176,
        "aux1/classifier": 1_025_000,
        "aux2/conv": 67_712,
        "aux2/fc": 2_098_176,
        "aux2/classifier": 1_025_000,
    }


def test_googlenet_without_aux_heads_returns_logits_in_training():
    model = models.create_model("googlenet", aux_logits=False)
    s = summarize(model, (1, 224, 224, 3), train=True)
    assert s.total_params == 6_998_552 and s.output_shape == (1, 1000)


def test_googlenet_inception_rows_and_ceil_pools():
    calls, _, variables = module_calls(models.create_model("googlenet"), native_shape("googlenet"))
    widths = {p: s for p, k, s, _ in calls if k == "Inception"}
    assert widths["inception_3a"] == (1, 28, 28, 256) and widths["inception_3b"] == (1, 28, 28, 480)
    assert widths["inception_4e"] == (1, 14, 14, 832) and widths["inception_5b"] == (1, 7, 7, 1024)
    assert param_shapes(variables)["inception_4a"]["5x5"]["kernel"] == (5, 5, 16, 48)  # true 5x5
    lrn = [(p, s[1]) for p, k, s, _ in calls if k == "LRN"]
    assert lrn == [("norm1", 56), ("norm2", 56)]


def test_googlenet_aux_heads_refuse_tiny_inputs():
    model = models.create_model("googlenet", num_classes=10)
    with pytest.raises(UserError, match="aux_logits=False"):
        module_calls(model, (1, 64, 64, 3), train=True)
    _, out, _ = module_calls(model, (1, 64, 64, 3), train=False)
    assert out.shape == (1, 10)


def test_bfloat16_compute_float32_params_and_logits():
    model = models.create_model("googlenet", num_classes=10, dtype=jnp.bfloat16)
    calls, out, variables = module_calls(model, (2, 224, 224, 3))
    assert out.shape == (2, 10) and out.dtype == jnp.float32
    assert {v.dtype for v in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
    dtypes = {p: d for p, k, _, d in calls if k in ("Conv", "LRN")}
    assert dtypes["conv1"] == dtypes["norm1"] == dtypes["inception_5b/pool_proj"] == jnp.bfloat16
