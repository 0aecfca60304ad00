"""Polyak averaging (cnn_jax/train/ema.py): the average the jitted step keeps, its checkpoint
and resumption, and evaluation with it."""

import json
import pathlib
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import run_cli
from helpers import max_abs_diff, metrics

from cnn_jax.layers.batchnorm import BatchNorm
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.ema import decay_at
from cnn_jax.train.evaluate import load_workdir_config
from cnn_jax.train.loop import build_run
from cnn_jax.train.state import create_state
from cnn_jax.train.steps import make_train_step, zero_train_metrics


def test_decay_follows_tensorflows_num_updates_warmup():
    assert float(decay_at(0, 0.9999, True)) == pytest.approx(0.1)
    assert float(decay_at(90, 0.9999, True)) == pytest.approx(0.91)
    assert float(decay_at(10**6, 0.9999, True)) == pytest.approx(0.9999)
    assert float(decay_at(0, 0.9999, False)) == pytest.approx(0.9999)


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(3)(x)


@pytest.mark.parametrize("decay,warmup", [(0.5, False), (0.9, True)])
def test_the_step_keeps_the_moving_average_of_params_and_batch_stats(decay, warmup):
    tx = optax.sgd(0.5, momentum=0.9)
    state = create_state(_Tiny(), tx, jax.random.key(0), (1, 4), ema_decay=decay)
    step = jax.jit(make_train_step(ema_decay=decay, ema_warmup=warmup))
    weights = lambda s: jax.tree.map(np.asarray, {"params": s.params, "batch_stats": s.batch_stats})
    expected, sums = weights(state), zero_train_metrics()
    for t in range(5):
        batch = {"image": jax.random.normal(jax.random.key(t + 1), (8, 4)) * 2 + 1, "label": jnp.arange(8) % 3}
        state, sums = step(state, batch, sums)
        d = min(decay, (1 + t) / (10 + t)) if warmup else decay
        expected = jax.tree.map(lambda e, w, d=d: d * e + (1 - d) * w, expected, weights(state))
    ema = jax.tree.map(np.asarray, state.ema)
    assert max_abs_diff(ema, expected) < 1e-6
    assert max_abs_diff(ema, weights(state)) > 1e-3  # the average is not the weights themselves
    assert float(np.abs(ema["batch_stats"]["BatchNorm_0"]["mean"]).max()) > 0.1  # the BN statistics moved


def test_no_average_is_kept_when_off():
    state = create_state(_Tiny(), optax.sgd(0.1), jax.random.key(0), (1, 4))
    assert state.ema == {}


LENET = ["--config", "configs/lenet5.py", "--num-devices", "1", "--config.log_every_steps=1"]


def _run(workdir, *overrides):
    code = run_cli(["train", *LENET, "--workdir", workdir, *overrides])[0]
    assert code == 0
    return json.loads((pathlib.Path(workdir) / "results.json").read_text())


def _val_loss(workdir) -> float:
    return [m["val/loss"] for m in metrics(workdir) if "val/loss" in m][-1]


def _train_loss(workdir, step: int) -> float:
    return next(m["train/loss"] for m in metrics(workdir) if m["step"] == step and "train/loss" in m)


def test_evaluation_uses_the_average(tmp_path, data_dir):
    # decay 1 without warmup keeps the average at the initial weights, so evaluating it must give
    # what the untrained network (a run at learning rate 0) gives, to the last digit.
    steps = ["--config.num_train_steps=3", "--config.eval_every_steps=3"]
    ema = _run(
        tmp_path / "ema", *steps, "--config.ema_decay=1.0", "--config.ema_warmup=False", "--config.optimizer.lr=0.05"
    )
    init = _run(tmp_path / "init", *steps, "--config.optimizer.lr=0.0")
    assert (ema["eval_weights"], init["eval_weights"]) == ("ema", "raw")
    assert ema["top1"] == init["top1"] and _val_loss(tmp_path / "ema") == _val_loss(tmp_path / "init")
    assert abs(_train_loss(tmp_path / "ema", 3) - _train_loss(tmp_path / "init", 3)) > 1e-3  # it trained
    # `cnn-jax eval` of the checkpoint evaluates the average as well.
    assert run_cli(["eval", "--workdir", tmp_path / "ema", "--step", "latest"])[0] == 0
    again = json.loads((tmp_path / "ema" / "eval_center.json").read_text())
    assert again["eval_weights"] == "ema" and again["top1"] == init["top1"]


def _weights(workdir) -> dict:
    """The latest checkpoint's params and average, as numpy."""
    config = load_workdir_config(pathlib.Path(workdir))
    ckpts = Checkpoints(pathlib.Path(workdir) / "checkpoints")
    try:
        _, state, _ = ckpts.restore(build_run(config, num_devices=1).state)
    finally:
        ckpts.close()
    return jax.tree.map(np.asarray, jax.device_get({"params": state.params, "ema": state.ema}))


def test_a_resumed_run_continues_the_same_average(tmp_path, data_dir):
    args = [
        "--config.num_train_steps=6",
        "--config.checkpoint_every_steps=3",
        "--config.eval_every_steps=6",
        "--config.ema_decay=0.9",
        "--config.optimizer.lr=0.05",
    ]
    straight = _run(tmp_path / "straight", *args)
    # A copy that lost its last checkpoint and its result: the same command resumes from step 3.
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "6")
    (tmp_path / "resumed" / "results.json").unlink()
    resumed = _run(tmp_path / "resumed", *args)
    assert "resuming" in (tmp_path / "resumed" / "train.log").read_text()
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a["ema"] and max_abs_diff(a, b) <= 1e-6
    assert max_abs_diff(a["ema"]["params"], a["params"]) > 1e-4
    assert resumed["top1"] == straight["top1"] and resumed["eval_weights"] == "ema"


def test_switching_the_average_on_or_off_when_resuming(tmp_path, data_dir):
    # --allow-config-change may turn ema_decay on for a run whose checkpoints hold no average (it
    # starts at the restored weights) and off again; no checkpoint is taken for a damaged one.
    wd = tmp_path / "w"
    assert _run(wd, "--config.num_train_steps=2")["eval_weights"] == "raw"
    on = _run(wd, "--config.num_train_steps=4", "--config.ema_decay=0.9", "--allow-config-change")
    assert on["eval_weights"] == "ema" and on["steps"] == 4
    assert "holds no weight average" in (wd / "train.log").read_text()
    off = _run(wd, "--config.num_train_steps=6", "--allow-config-change")
    assert off["eval_weights"] == "raw" and off["steps"] == 6
    assert not (wd / "checkpoints_unreadable").exists()
