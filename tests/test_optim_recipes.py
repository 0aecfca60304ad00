"""The papers' optimiser details: TensorFlow's RMSProp and the linear learning-rate scaling rule."""

import importlib.util

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import ROOT

from cnn_jax.config import base_config, cpu_variant
from cnn_jax.errors import UserError
from cnn_jax.train.optim import base_learning_rate, learning_rate_schedule, make_optimizer

A = np.array([0.5, 2.0, -3.0, 10.0])  # a quadratic f(w) = sum(A w^2) / 2, gradient A w
W0 = np.array([1.0, -2.0, 0.5, 0.3])


def _rmsprop_config(initial_scale: float):
    c = base_config()
    c.optimizer.name, c.optimizer.rho, c.optimizer.eps, c.optimizer.momentum = "rmsprop", 0.9, 1.0, 0.9
    c.optimizer.rmsprop_initial_scale = initial_scale
    return c


def _optax_trajectory(config, schedule, steps: int) -> np.ndarray:
    tx = make_optimizer(config, schedule)
    w = jnp.asarray(W0, jnp.float32)
    state, out = tx.init(w), []
    for _ in range(steps):
        updates, state = tx.update(jnp.asarray(A, jnp.float32) * w, state, w)
        w = optax.apply_updates(w, updates)
        out.append(np.asarray(w))
    return np.array(out)


def _tf_rmsprop(lrs, rho=0.9, eps=1.0, momentum=0.9, ms0=1.0) -> np.ndarray:
    """tf.compat.v1.train.RMSPropOptimizer (ApplyRMSProp), in float64."""
    w, ms, mom, out = W0.copy(), np.full_like(W0, ms0), np.zeros_like(W0), []
    for lr in lrs:
        g = A * w
        ms = rho * ms + (1 - rho) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
        out.append(w)
    return np.array(out)


def test_rmsprop_is_tensorflows_with_the_accumulator_at_one():
    # The rate halves every step, so the test also pins where it enters: inside the momentum
    # (TF: mom = m mom + lr g / rms), not outside it.
    lrs = [0.045 * 0.5**t for t in range(6)]
    ours = _optax_trajectory(_rmsprop_config(1.0), optax.exponential_decay(0.045, 1, 0.5), 6)
    np.testing.assert_allclose(ours, _tf_rmsprop(lrs), atol=1e-6, rtol=0)
    # First step, by hand: ms = 0.9 + 0.1 g^2; w1 = w0 - 0.045 g / sqrt(ms + 1); g = A W0.
    g = A * W0
    np.testing.assert_allclose(ours[0], W0 - 0.045 * g / np.sqrt(0.9 + 0.1 * g * g + 1.0), atol=1e-7)


def test_rmsprop_default_accumulator_starts_at_zero():
    ours = _optax_trajectory(_rmsprop_config(0.0), optax.constant_schedule(0.045), 4)
    np.testing.assert_allclose(ours, _tf_rmsprop([0.045] * 4, ms0=0.0), atol=1e-6, rtol=0)
    assert np.max(np.abs(ours - _tf_rmsprop([0.045] * 4))) > 1e-3  # and differs from TF's start


def _lr_config(lr, batch, reference, warmup_epochs=0.0):
    c = base_config()
    c.optimizer.lr, c.batch_size, c.optimizer.lr_reference_batch = lr, batch, reference
    c.schedule.warmup_epochs = warmup_epochs
    return c


def test_linear_scaling_rule():
    assert base_learning_rate(_lr_config(0.1, 1024, 0)) == 0.1  # off: lr as given
    assert base_learning_rate(_lr_config(0.1, 1024, 256)) == pytest.approx(0.4)
    assert base_learning_rate(_lr_config(0.1, 32, 256)) == pytest.approx(0.0125)
    # Warmup (Goyal et al.: 5 epochs) ramps to the scaled rate: 10 steps per epoch, 1 epoch.
    schedule = learning_rate_schedule(_lr_config(0.1, 8192, 256, warmup_epochs=1.0), 10, 100)
    assert float(schedule(0)) == pytest.approx(0.32) and float(schedule(9)) == pytest.approx(3.2)
    assert float(schedule(50)) == pytest.approx(3.2)
    with pytest.raises(UserError, match="lr_reference_batch"):
        base_learning_rate(_lr_config(0.1, 32, -1))


def test_cpu_variant_does_not_scale_a_per_reference_rate_twice():
    c = cpu_variant(_lr_config(0.1, 256, 256))
    assert (c.optimizer.lr, c.batch_size) == (0.1, 16) and base_learning_rate(c) == pytest.approx(0.00625)
    old = cpu_variant(_lr_config(0.1, 256, 0))  # without the rule the variant scales lr itself
    assert old.optimizer.lr == pytest.approx(0.00625) and base_learning_rate(old) == pytest.approx(0.00625)


def _config_file(name: str, arg=None):
    spec = importlib.util.spec_from_file_location(f"_cfg_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_paper_configs_use_the_recipes():
    for arg in ("depth=50", "depth=50,v1_5"):
        c = _config_file("resnet", arg)
        assert (c.optimizer.lr, c.optimizer.lr_reference_batch, c.batch_size) == (0.1, 256, 256)
    c = _config_file("resnet", "depth=50")
    c.batch_size = 1024
    assert base_learning_rate(c) == pytest.approx(0.4)
    for name in ("inception_v3", "inception_resnet_v2"):
        c = _config_file(name)
        assert (c.optimizer.rmsprop_initial_scale, c.optimizer.eps, c.optimizer.rho) == (1.0, 1.0, 0.9)
        assert (c.optimizer.lr, c.optimizer.lr_reference_batch, c.batch_size) == (0.045, 32, 32)
        assert c.ema_decay == 0.9999 and c.ema_warmup
        assert _config_file(name, "cpu").ema_decay == 0.9999
