"""bn_impl "sums" (cnn_jax/layers/batchnorm.py): training-mode BatchNorm from per-channel sums
computes flax's function (outputs, running statistics, all gradients) to float rounding."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax import models
from cnn_jax.layers import batchnorm
from cnn_jax.layers.batchnorm import BatchNorm

X = jax.random.normal(jax.random.key(0), (8, 5, 5, 6)) * 3.0 + 1.0
R = jax.random.normal(jax.random.key(2), X.shape)


@pytest.fixture(scope="module")
def variables():
    v = BatchNorm(momentum=0.9).init(jax.random.key(1), X, use_running_average=False)
    return {
        "params": {"scale": jnp.linspace(0.5, 2.0, 6), "bias": jnp.arange(6.0) - 2.5},
        "batch_stats": v["batch_stats"],
    }


def _forward_and_grads(impl, module, variables, x, train=True):
    def loss(params, x):
        y, updated = module.apply(
            {**variables, "params": params}, x, use_running_average=not train, mutable=["batch_stats"]
        )
        return jnp.sum(jax.nn.relu(y) * R.astype(y.dtype)), (y, updated)

    with batchnorm.bn_impl(impl):
        (_, (y, updated)), grads = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(variables["params"], x)
    return y, updated, grads


def _close(a, b, rtol):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        u, v = np.asarray(u, np.float32), np.asarray(v, np.float32)
        assert np.max(np.abs(u - v)) <= rtol * (np.max(np.abs(v)) + 1e-12), (np.max(np.abs(u - v)), np.max(np.abs(v)))


def test_sums_equal_flax_outputs_statistics_and_gradients(variables):
    y0, s0, g0 = _forward_and_grads("flax", BatchNorm(momentum=0.9), variables, X)
    y1, s1, g1 = _forward_and_grads("sums", BatchNorm(momentum=0.9), variables, X)
    assert y1.dtype == y0.dtype == jnp.float32
    _close(y1, y0, 1e-6)
    _close(s1, s0, 1e-6)
    _close(g1, g0, 1e-5)  # d/dscale, d/dbias, d/dx
    assert not np.allclose(g0[1], 0)


def _float64_gradients(x, params):
    """d/dscale, d/dbias and d/dx of _forward_and_grads' loss, in float64."""
    x, r = np.asarray(x, np.float64), np.asarray(R, np.float64)
    scale, bias = (np.asarray(params[k], np.float64) for k in ("scale", "bias"))
    axes = (0, 1, 2)
    inv = 1 / np.sqrt(x.var(axes) + 1e-5)
    xhat = (x - x.mean(axes)) * inv
    g = r * (xhat * scale + bias > 0)
    dx = inv * scale * (g - g.mean(axes) - xhat * (g * xhat).mean(axes))
    return (g * xhat).sum(axes), g.sum(axes), dx


@pytest.mark.parametrize("offset", [10.0, 30.0])
def test_gradients_of_offset_channels_are_as_accurate_as_flax(variables, offset):
    # The backward sums g * x uncentred; on channels whose mean is many standard deviations
    # from zero that cancels, as flax's fast variance already does in the forward pass.
    # Channel j is shifted by offset * j / 5 standard deviations.
    x = X + offset * 3.0 * jnp.arange(6.0) / 5
    want = _float64_gradients(x, variables["params"])
    errors = {}
    for impl in batchnorm.IMPLS:
        _, _, (g_params, g_x) = _forward_and_grads(impl, BatchNorm(momentum=0.9), variables, x)
        got = (g_params["scale"], g_params["bias"], g_x)
        errors[impl] = [np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)) for a, b in zip(got, want)]
    assert max(errors["flax"]) > 1e-6  # the cancellation is there to measure
    for sums, flax_ in zip(errors["sums"], errors["flax"]):
        assert sums <= 1.5 * flax_ + 1e-6, errors


def test_bfloat16_compute_keeps_the_dtype_and_stays_close(variables):
    xb = X.astype(jnp.bfloat16)
    y0, s0, g0 = _forward_and_grads("flax", BatchNorm(momentum=0.9, dtype=jnp.bfloat16), variables, xb)
    y1, s1, g1 = _forward_and_grads("sums", BatchNorm(momentum=0.9, dtype=jnp.bfloat16), variables, xb)
    assert y1.dtype == y0.dtype == jnp.bfloat16
    _close(s1, s0, 1e-5)  # statistics are reduced in float32 by both
    _close(y1, y0, 2e-2)  # one bfloat16 rounding of differently ordered arithmetic
    _close(g1, g0, 3e-2)


def test_groups_and_inference_keep_flax_path(variables):
    for module, train in [(BatchNorm(momentum=0.9, group_size=4), True), (BatchNorm(momentum=0.9), False)]:
        y0, _, g0 = _forward_and_grads("flax", module, variables, X, train)
        y1, _, g1 = _forward_and_grads("sums", module, variables, X, train)
        np.testing.assert_array_equal(y1, y0)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
            np.testing.assert_array_equal(a, b)


def test_whole_model_loss_and_gradients_match_and_the_program_changes():
    model = models.create_model("resnet20", num_classes=10)
    x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    def loss(params):
        logits, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0])

    results, programs = {}, {}
    for impl in batchnorm.IMPLS:
        with batchnorm.bn_impl(impl):
            step = jax.jit(jax.value_and_grad(loss))
            programs[impl] = step.lower(variables["params"]).as_text()
            results[impl] = step(variables["params"])
    assert programs["sums"] != programs["flax"]
    np.testing.assert_allclose(results["sums"][0], results["flax"][0], rtol=1e-5)
    _close(results["sums"][1], results["flax"][1], 1e-4)


def test_unknown_bn_impl_is_a_user_error(tmp_path, data_dir, capsys):
    from helpers import assert_unknown_impl_refused

    assert_unknown_impl_refused(batchnorm.SWITCH, tmp_path, capsys)


@pytest.mark.parametrize("platform,impl", [("cpu", "sums"), ("gpu", "flax"), ("tpu", "flax")])
def test_auto_resolves_per_platform(platform, impl):
    from cnn_jax.config import base_config, resolve_for_platform

    assert resolve_for_platform(base_config(), platform).bn_impl == impl


def test_training_with_sums_follows_the_flax_trajectory(tmp_path, data_dir, root, capsys):
    # ResNet-20 on digits, 4 steps: only float rounding differs (gentle lr, as in test_conv_gemm).
    from conftest import run_cli
    from helpers import train_losses

    common = [
        "train",
        "--config",
        f"{root}/configs/resnet_cifar.py:depth=20,cpu",
        "--config.batch_size=16",
        "--config.optimizer.lr=0.001",
        "--config.num_train_steps=4",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=4",
        "--config.eval_every_steps=4",
        "--num-devices",
        "1",
    ]
    for impl in batchnorm.IMPLS:
        assert run_cli(common + [f"--config.bn_impl={impl}", "--workdir", tmp_path / impl], capsys)[0] == 0
    assert json.loads((tmp_path / "sums" / "config.json").read_text())["bn_impl"] == "sums"
    flax_, sums = train_losses(tmp_path / "flax"), train_losses(tmp_path / "sums")
    assert sorted(flax_) == sorted(sums) == [1, 2, 3, 4]
    np.testing.assert_allclose([sums[s] for s in sorted(flax_)], [flax_[s] for s in sorted(flax_)], rtol=1e-4)
    assert abs(flax_[4] - flax_[1]) > 1e-3
