"""The "gemm" and "onednn" convolution backends compute the same function as XLA's convolutions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.layers import conv

NHWC = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # what nn.Conv passes


def _loss(conv, strides, padding, groups=1, rhs_dilation=None):
    def f(x, w):
        y = conv(x, w, strides, padding, rhs_dilation=rhs_dilation, dimension_numbers=NHWC, feature_group_count=groups)
        return jnp.sum(jnp.sin(y.astype(jnp.float32)))  # sin: a gradient that differs per pixel

    return f


def _value_and_grads(conv_fn, x, w, *args, backend="xla", **kwargs):
    with conv.conv_backend(backend):
        return jax.jit(jax.value_and_grad(_loss(conv_fn, *args, **kwargs), (0, 1)))(x, w)


# (kernel, stride, padding, input size): ResNet's 1x1s (stride 1 and 2), 3x3s, the 7x7/2 stem,
# Inception's asymmetric 1x7, and TF "SAME" padding that pads one side only.
CASES = [
    ((1, 1), 1, ((0, 0), (0, 0)), 9),
    ((1, 1), 2, ((0, 0), (0, 0)), 9),
    ((3, 3), 1, ((1, 1), (1, 1)), 9),
    ((3, 3), 2, ((1, 1), (1, 1)), 10),
    ((7, 7), 2, ((3, 3), (3, 3)), 16),
    ((1, 7), 1, ((0, 0), (3, 3)), 9),
    ((3, 3), 2, ((0, 1), (0, 1)), 10),
    ((5, 5), 1, ((0, 0), (0, 0)), 9),
]


def _skip_without_onednn(backend):
    from cnn_jax.cpu import onednn as conv_onednn

    if backend == "onednn" and conv_onednn.unavailable():
        pytest.skip(f"oneDNN cannot run here: {conv_onednn.unavailable()}")


@pytest.mark.parametrize("backend", ["gemm", "onednn"])
@pytest.mark.parametrize("kernel,stride,padding,size", CASES)
def test_outputs_and_both_gradients_equal_xla(kernel, stride, padding, size, backend):
    _skip_without_onednn(backend)
    x = jax.random.normal(jax.random.key(0), (3, size, size, 6))
    w = jax.random.normal(jax.random.key(1), kernel + (6, 5)) * 0.3
    args = ((stride, stride), padding)
    want_v, want_g = _value_and_grads(lax.conv_general_dilated, x, w, *args)
    got_v, got_g = _value_and_grads(conv.conv_general_dilated, x, w, *args, backend=backend)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-4)
    for got, want in zip(got_g, want_g):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend,kernel,stride", [("gemm", (1, 1), 2), ("onednn", (3, 3), 1), ("onednn", (3, 3), 2)])
def test_bfloat16_gradients_stay_close_to_xla(backend, kernel, stride):
    _skip_without_onednn(backend)
    x = jax.random.normal(jax.random.key(0), (4, 12, 12, 16)).astype(jnp.bfloat16)
    w = (jax.random.normal(jax.random.key(1), kernel + (16, 8)) * 0.2).astype(jnp.bfloat16)
    args = ((stride, stride), "SAME")
    _, want = _value_and_grads(lax.conv_general_dilated, x, w, *args)
    _, got = _value_and_grads(conv.conv_general_dilated, x, w, *args, backend=backend)
    for g, r in zip(got, want):
        assert g.dtype == jnp.bfloat16
        scale = float(jnp.max(jnp.abs(r.astype(jnp.float32))))
        assert float(jnp.max(jnp.abs(g.astype(jnp.float32) - r.astype(jnp.float32)))) < 0.02 * scale


def test_grouped_and_dilated_convolutions_fall_back_to_xla():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
    for w, kwargs in (
        (jax.random.normal(jax.random.key(1), (3, 3, 1, 4)), {"groups": 4}),
        (jax.random.normal(jax.random.key(1), (3, 3, 4, 4)), {"rhs_dilation": (2, 2)}),
    ):
        args = ((1, 1), ((2, 2), (2, 2)))
        want = _value_and_grads(lax.conv_general_dilated, x, w, *args, **kwargs)
        got = _value_and_grads(conv.conv_general_dilated, x, w, *args, backend="gemm", **kwargs)
        assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), got, want))


def test_gemm_backend_emits_no_convolution_for_1x1():
    x = jnp.ones((2, 8, 8, 4))
    w = jnp.ones((1, 1, 4, 3))
    with conv.conv_backend("gemm"):
        text = (
            jax.jit(lambda x, w: conv.conv_general_dilated(x, w, (1, 1), ((0, 0), (0, 0)), dimension_numbers=NHWC))
            .lower(x, w)
            .as_text()
        )
    assert "convolution" not in text and "dot_general" in text


def test_whole_model_logits_and_gradients_match():
    # MobileNet v1: 13 pointwise 1x1 convolutions (matmuls) between depthwise 3x3s (XLA's).
    model = models.create_model("mobilenet_v1", num_classes=10, alpha=0.25)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    def loss(params):
        return jnp.sum(model.apply({**variables, "params": params}, x, train=False) ** 2)

    from cnn_jax.cpu import onednn as conv_onednn

    results, convolutions = {}, {}
    for backend in [b for b in conv.BACKENDS if b != "onednn" or not conv_onednn.unavailable()]:
        with conv.conv_backend(backend):
            step = jax.jit(jax.value_and_grad(loss))
            convolutions[backend] = step.lower(variables["params"]).as_text().count("stablehlo.convolution")
            results[backend] = step(variables["params"])
    # The switch reached the model: its 14 1x1 convolutions (13 pointwise + the 'SAME'-padded
    # classifier) left the program, 3 each (forward and both gradients); the stem and the
    # depthwise ones stayed.
    assert convolutions["xla"] - convolutions["gemm"] == 3 * 14
    if "onednn" in convolutions:  # the stem and the 13 depthwise went to oneDNN: none is left
        assert convolutions["onednn"] == 0 and convolutions["xla"] == 3 * 28 - 1  # no input gradient at the stem
    for backend in list(results)[1:]:
        np.testing.assert_allclose(results[backend][0], results["xla"][0], rtol=1e-5)
        flat_g = jax.tree.leaves(results[backend][1])
        flat_x = jax.tree.leaves(results["xla"][1])
        worst = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12)) for a, b in zip(flat_g, flat_x))
        assert worst < 1e-4


def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match="conv_impl"):
        with conv.conv_backend("cudnn"):
            pass


def test_training_with_gemm_convolutions_follows_the_xla_trajectory(tmp_path, data_dir, root, capsys):
    # MobileNet v1 (alpha 0.25) on digits: its pointwise 1x1 convolutions run as matmuls,
    # the depthwise 3x3s and the stem stay XLA's. Only float rounding differs, so 4 steps of
    # losses agree to 1e-4 relative (typically ~2e-6) at a gentle lr; at the cpu config's own
    # lr, BN over the digits' near-constant borders magnifies rounding into 2% by step 4.
    from conftest import run_cli
    from helpers import train_losses

    common = [
        "train",
        "--config",
        f"{root}/configs/mobilenet_v1.py:alpha=0.25,cpu",
        "--config.batch_size=16",
        "--config.optimizer.lr=0.001",
        "--config.num_train_steps=4",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=4",
        "--config.eval_every_steps=4",
        "--num-devices",
        "1",
    ]
    for impl in conv.BACKENDS:
        assert run_cli(common + [f"--config.conv_impl={impl}", "--workdir", tmp_path / impl], capsys)[0] == 0
    xla = train_losses(tmp_path / "xla")
    assert sorted(xla) == [1, 2, 3, 4]
    for impl in conv.BACKENDS[1:]:  # onednn also runs the 3x3 stem
        other = train_losses(tmp_path / impl)
        assert sorted(other) == [1, 2, 3, 4]
        np.testing.assert_allclose([other[s] for s in sorted(xla)], [xla[s] for s in sorted(xla)], rtol=1e-4)
    assert abs(xla[4] - xla[1]) > 1e-3  # the steps did train


def test_bad_conv_impl_in_the_config_is_one_sentence(tmp_path, data_dir, capsys):
    from helpers import assert_unknown_impl_refused

    assert_unknown_impl_refused(conv.SWITCH, tmp_path, capsys)


# What every `auto` becomes on each platform (oneDNN buildable): bfloat16 and XLA's own forms
# on GPU/TPU; on CPU float32, oneDNN convolutions and the CPU forms of BN, pooling and dense.
AUTO = {
    "cpu": {
        "dtype": "float32",
        "conv_impl": "onednn",
        "bn_impl": "sums",
        "pool_impl": "offsets",
        "dense_impl": "explicit",
    },
    "gpu": {"dtype": "bfloat16", "conv_impl": "xla", "bn_impl": "flax", "pool_impl": "xla", "dense_impl": "xla"},
    "tpu": {"dtype": "bfloat16", "conv_impl": "xla", "bn_impl": "flax", "pool_impl": "xla", "dense_impl": "xla"},
}
# A choice other than the platform's `auto` for every key: named choices stand.
NAMED = {
    "cpu": {"dtype": "bfloat16", "conv_impl": "xla", "bn_impl": "flax", "pool_impl": "xla", "dense_impl": "xla"},
    "gpu": {
        "dtype": "float32",
        "conv_impl": "gemm",
        "bn_impl": "sums",
        "pool_impl": "offsets",
        "dense_impl": "explicit",
    },
    "tpu": {
        "dtype": "float32",
        "conv_impl": "gemm",
        "bn_impl": "sums",
        "pool_impl": "offsets",
        "dense_impl": "explicit",
    },
}


def _resolved(platform: str, **named) -> dict:
    from cnn_jax.config import base_config, resolve_for_platform

    c = base_config()
    c.update(named)
    c = resolve_for_platform(c, platform)
    return {k: c[k] for k in AUTO[platform]}


@pytest.mark.parametrize("platform", sorted(AUTO))
def test_auto_choices_resolve_per_platform(platform, monkeypatch):
    from cnn_jax.cpu import onednn as conv_onednn

    monkeypatch.setattr(conv_onednn, "unavailable", lambda: None)  # as on a machine where oneDNN builds
    assert _resolved(platform) == AUTO[platform]
    assert _resolved(platform, **NAMED[platform]) == NAMED[platform]


def test_auto_convolutions_without_onednn_and_onednn_off_the_cpu(monkeypatch):
    from cnn_jax.cpu import onednn as conv_onednn
    from cnn_jax.errors import UserError

    monkeypatch.setattr(conv_onednn, "unavailable", lambda: "no C++ compiler")
    assert _resolved("cpu") == {**AUTO["cpu"], "conv_impl": "gemm"}
    with pytest.raises(UserError, match="no C\\+\\+ compiler"):
        _resolved("cpu", conv_impl="onednn")
    monkeypatch.setattr(conv_onednn, "unavailable", lambda: None)
    with pytest.raises(UserError, match="runs on CPUs only"):
        _resolved("gpu", conv_impl="onednn")


def test_workdir_records_the_resolved_choices(tmp_path, data_dir, capsys):
    import json

    from conftest import run_cli

    assert (
        run_cli(
            [
                "train",
                "--config",
                "configs/lenet5.py",
                "--config.num_train_steps=2",
                "--workdir",
                tmp_path / "w",
                "--num-devices",
                "1",
            ],
            capsys,
        )[0]
        == 0
    )
    written = json.loads((tmp_path / "w" / "config.json").read_text())
    assert (written["dtype"], written["conv_impl"]) == ("float32", conv.resolve("auto", "cpu"))


def test_every_model_builds_its_convolutions_through_the_switchable_conv():
    # layers.Conv is nn.Conv with the dispatching conv_general_dilated; a model calling
    # nn.Conv directly would silently ignore conv_impl.
    import pathlib

    import cnn_jax.models as package

    direct = [p.name for p in pathlib.Path(package.__file__).parent.glob("*.py") if "nn.Conv(" in p.read_text()]
    assert direct == []
