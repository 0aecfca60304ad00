"""The torchvision flavours of two networks: `googlenet_tv` (torchvision's GoogLeNet, built
from the paper GoogLeNet's blocks) and Inception-v3's `pool_count_include_pad`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from model_checks import check_params_and_macs

from cnn_jax import layers, models
from cnn_jax.models import inception_v3
from cnn_jax.report.summary import summarize
from cnn_jax.weights.torch_maps import TORCH_MODELS

RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}


def calls_of(model, shape, train=False):
    """{path: (class name, output shape, module)} of every module call (abstract, no compute)."""
    calls = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and hasattr(out, "shape"):
            calls.setdefault(
                "/".join(context.module.path), (type(context.module).__name__, tuple(out.shape), context.module)
            )
        return out

    def run():
        with nn.intercept_methods(record):
            return model.init_with_output(RNGS, jnp.zeros(shape), train=train)

    out, variables = jax.eval_shape(run)
    return calls, out, variables


# ---------------------------------------------------------------- googlenet_tv


def test_googlenet_tv_counts_are_torchvisions():
    s = check_params_and_macs("googlenet_tv")
    assert (s.total_params, s.total_macs) == (6_624_904, 1_498_376_192)
    with_aux = summarize(models.create_model("googlenet_tv"), (1, 224, 224, 3), train=True)
    assert with_aux.total_params == 13_004_888
    rows = {r.path: r.params for r in with_aux.rows if r.path.startswith("aux2")}
    # bias-free 1x1 conv 528->128 and its BN, FC over the 4x4x128 map, classifier.
    assert rows == {"aux2/conv/conv": 67_584, "aux2/conv/bn": 256, "aux2/fc": 2_098_176, "aux2/classifier": 1_025_000}


def test_googlenet_tv_is_the_paper_net_with_torchvisions_differences():
    calls, out, variables = calls_of(models.create_model("googlenet_tv", num_classes=10), (1, 224, 224, 3))
    kinds = {kind for kind, _, _ in calls.values()}
    assert out.shape == (1, 10) and "LRN" not in kinds
    params = variables["params"]
    assert params["inception_4a"]["5x5"]["conv"]["kernel"].shape == (3, 3, 16, 48)
    assert "bias" not in params["conv1"]["conv"]
    epsilons = {m.epsilon for kind, _, m in calls.values() if kind == "BatchNorm"}
    assert epsilons == {1e-3}
    paper, _, _ = calls_of(models.create_model("googlenet", num_classes=10), (1, 224, 224, 3))
    assert {p: s for p, (_, s, _) in paper.items() if p.startswith("inception_") and "/" not in p} == {
        p: s for p, (_, s, _) in calls.items() if p.startswith("inception_") and "/" not in p
    }


def test_googlenet_tv_pools_2x2_before_5a():
    # At 208x208 the 4e map is 13x13: ceil-mode 2x2/2 leaves 7x7, the paper's 3x3/2 6x6.
    for name, side in (("googlenet_tv", 7), ("googlenet", 6)):
        calls, _, _ = calls_of(models.create_model(name, num_classes=10), (1, 208, 208, 3))
        assert calls["inception_4e"][1] == (1, 13, 13, 832)
        assert calls["inception_5a"][1] == (1, side, side, 832)


def test_googlenet_tv_aux_heads_pool_adaptively_to_4x4():
    model = models.create_model("googlenet_tv", num_classes=10)
    calls, out, _ = calls_of(model, (2, 64, 64, 3), train=True)  # 4a is 4x4: the paper's refuses
    assert [o.shape for o in out] == [(2, 10)] * 3
    assert calls["aux1/conv"][1] == (2, 4, 4, 128)
    x = jnp.arange(14 * 14, dtype=jnp.float32).reshape(1, 14, 14, 1)
    pooled = layers.adaptive_avg_pool(x, 4)  # torch's windows: [0, 4), [3, 7), [7, 11), [10, 14)
    assert float(pooled[0, 1, 2, 0]) == float(x[0, 3:7, 7:11, 0].mean())
    assert float(pooled[0, 3, 0, 0]) == float(x[0, 10:14, 0:4, 0].mean())


# ---------------------------------------------------------------- Inception-v3's average pools


def test_avg_pool_counts_the_padding_only_when_asked():
    x = jnp.arange(1.0, 17.0).reshape(1, 4, 4, 1)  # rows 1-4, 5-8, 9-12, 13-16
    with_pad = np.asarray(inception_v3.avg_pool_3x3(x, count_include_pad=True))[0, ..., 0]
    keras = np.asarray(inception_v3.avg_pool_3x3(x, count_include_pad=False))[0, ..., 0]
    assert with_pad[0, 0] == np.float32((1 + 2 + 5 + 6) / 9)  # corner: 4 taps / 9
    assert with_pad[0, 1] == np.float32((1 + 2 + 3 + 5 + 6 + 7) / 9)  # edge: 6 taps / 9
    assert keras[0, 0] == np.float32((1 + 2 + 5 + 6) / 4)
    assert keras[0, 1] == np.float32((1 + 2 + 3 + 5 + 6 + 7) / 6)
    assert with_pad[1, 1] == keras[1, 1] == np.float32((1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9)


def test_inception_v3_flag_reaches_only_the_pool_branches_borders():
    block = inception_v3.Mixed(inception_v3.block_a(8))
    x = jax.random.normal(jax.random.key(0), (1, 5, 5, 4))
    variables = block.init(jax.random.key(1), x)
    keras = np.asarray(block.apply(variables, x))
    torch = np.asarray(block.clone(pool_count_include_pad=True).apply(variables, x))
    np.testing.assert_array_equal(torch[..., :-8], keras[..., :-8])  # 1x1, 5x5, 3x3dbl
    np.testing.assert_array_equal(torch[:, 1:4, 1:4, -8:], keras[:, 1:4, 1:4, -8:])  # interior
    assert np.all(np.abs(torch[0, 0, :, -8:] - keras[0, 0, :, -8:]).max(axis=-1) > 0)  # border
    assert models.create_model("inception_v3").pool_count_include_pad is False  # Keras's default
    assert dict(TORCH_MODELS["inception_v3"].defaults)["pool_count_include_pad"] is True
