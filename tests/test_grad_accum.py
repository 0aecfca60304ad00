"""Gradient accumulation (cnn_jax/train/accumulate.py): k micro-batches of batch_size / k make
one optimizer step of the whole batch, on one device and on 8; BatchNorm sees each micro-batch
alone; the micro-batches stay on the devices that hold them; the mistakes are one sentence."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import run_cli
from helpers import final_params, max_abs_diff, train_losses

from cnn_jax import models
from cnn_jax.config import base_config
from cnn_jax.config_rules import config_problems
from cnn_jax.models.resnet import ResNet
from cnn_jax.train import accumulate, parallel
from cnn_jax.train.state import create_state
from cnn_jax.train.steps import make_train_step, zero_train_metrics

STEPS = 10
LENET = [
    "train",
    "--config",
    "configs/lenet5.py",
    "--config.batch_size=64",
    f"--config.num_train_steps={STEPS}",
    "--config.log_every_steps=1",
    f"--config.eval_every_steps={STEPS}",
    f"--config.checkpoint_every_steps={STEPS}",
]


@pytest.fixture(scope="module")
def whole_batch_run(tmp_path_factory, data_dir):
    """LeNet-5, batch 64 in one pass on one device: the run accumulation must reproduce."""
    workdir = tmp_path_factory.mktemp("whole")
    assert run_cli([*LENET, "--num-devices", "1", "--workdir", workdir])[0] == 0
    return workdir


def _assert_same_run(whole, accumulated, loss_rtol: float):
    # Only the order of float32 sums differs (the four micro-batch gradients are averaged after
    # the fact). The parameters move by up to 5e-3 in 10 steps and agree to 2e-8; summing the
    # gradients instead of averaging them puts them 2e-2 apart.
    a, b = train_losses(whole), train_losses(accumulated)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    np.testing.assert_allclose([b[s] for s in a], [a[s] for s in a], rtol=loss_rtol)
    assert max_abs_diff(final_params(whole), final_params(accumulated)) < 1e-6


def test_four_micro_batches_make_the_step_of_the_whole_batch(tmp_path, whole_batch_run):
    args = [*LENET, "--num-devices", "1", "--config.grad_accum_steps=4", "--workdir", tmp_path]
    assert run_cli(args)[0] == 0
    _assert_same_run(whole_batch_run, tmp_path, loss_rtol=1e-6)  # measured 1.0e-7
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["grad_accum_steps"] == 4 and results["batch_size"] == 64 and results["steps"] == STEPS
    assert json.loads((tmp_path / "config.json").read_text())["grad_accum_steps"] == 4


def test_four_micro_batches_on_eight_devices_make_the_same_step(tmp_path, whole_batch_run):
    # Each micro-batch of 16 is split 2 per device; the run is the one-device, one-pass run.
    # The logged losses agree to 7e-7 relative: each is now the sum of 4 x 8 devices' shares.
    assert run_cli([*LENET, "--config.grad_accum_steps=4", "--workdir", tmp_path])[0] == 0
    assert json.loads((tmp_path / "results.json").read_text())["devices"] == 8
    _assert_same_run(whole_batch_run, tmp_path, loss_rtol=2e-6)


# --- the step itself ------------------------------------------------------------------------
def _lenet_state():
    model = models.create_model("lenet5", num_classes=10)
    return create_state(model, optax.sgd(0.01, momentum=0.9), jax.random.key(0), (1, 32, 32, 1))


def _images(seed: int, n: int, shape=(32, 32, 1)):
    return jax.random.normal(jax.random.key(seed), (n, *shape))


def test_mixed_labels_and_every_metric_sum_as_in_one_pass():
    # Soft (Mixup/CutMix) labels, 16 examples in 4 micro-batches: the same parameters, loss,
    # correct count and example count as one pass over the 16.
    labels = jax.random.dirichlet(jax.random.key(2), jnp.full((10,), 0.3), (16,))
    batch = {"image": _images(1, 16), "label": labels}
    outcome = {}
    for k in (1, 4):
        state, sums = jax.jit(make_train_step(grad_accum_steps=k))(_lenet_state(), batch, zero_train_metrics())
        outcome[k] = jax.tree.map(np.asarray, (state.params, sums))
    (p1, m1), (p4, m4) = outcome[1], outcome[4]
    assert max_abs_diff(p1, p4) < 1e-6
    np.testing.assert_allclose(m4["loss_sum"], m1["loss_sum"], rtol=1e-6)
    assert (m4["correct"], m4["count"], m4["steps"]) == (m1["correct"], 16, 1) and m1["count"] == 16
    assert max_abs_diff(p1, jax.tree.map(np.asarray, _lenet_state().params)) > 1e-4  # the step moved them


def test_a_non_finite_loss_in_any_micro_batch_marks_the_step():
    images = _images(3, 16).at[5].set(jnp.nan)  # example 5 lies in micro-batch 1 of 4 (0-3)
    step = jax.jit(make_train_step(grad_accum_steps=4))
    state = _lenet_state().replace(step=jnp.asarray(5, jnp.int32))
    _, sums = step(state, {"image": images, "label": jnp.arange(16) % 10}, zero_train_metrics())
    assert int(sums["first_bad_step"]) == 5
    _, sums = step(state, {"image": _images(3, 16), "label": jnp.arange(16) % 10}, zero_train_metrics())
    assert int(sums["first_bad_step"]) == -1


def test_micro_batch_j_takes_every_kth_example_from_j():
    out = accumulate.micro_batches({"x": jnp.arange(12), "y": jnp.arange(24).reshape(12, 2)}, 3)
    np.testing.assert_array_equal(out["x"], [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]])
    np.testing.assert_array_equal(out["y"][1], [[2, 3], [8, 9], [14, 15], [20, 21]])


def test_each_micro_batch_draws_its_own_dropout_key():
    # A stand-in pass whose "loss" is a uniform draw from its key: the sum is that of the keys
    # folded with the micro-batch index 0..3, not four times the step's key.
    def gradients(params, batch_stats, micro, key):
        return params, batch_stats, {"loss_sum": jax.random.uniform(key)}

    key = jax.random.key(7)
    batch = {"image": jnp.zeros((8, 1))}
    _, _, sums = accumulate.accumulate_gradients(gradients, {}, {}, batch, key, 4, {"loss_sum": jnp.zeros(())})
    expected = sum(float(jax.random.uniform(jax.random.fold_in(key, j))) for j in range(4))
    assert float(sums["loss_sum"]) == pytest.approx(expected, rel=1e-6)
    assert abs(float(sums["loss_sum"]) - 4 * float(jax.random.uniform(key))) > 1e-3


# --- BatchNorm: statistics per micro-batch -----------------------------------------------------
TINY_RESNET = dict(stages=(1, 1), widths=(4, 8), block="basic", num_classes=5, stem="cifar", shortcut="A")


def test_batchnorm_sees_each_micro_batch_alone_and_updates_its_averages_in_order():
    # Two micro-batches of 8 (examples 0, 2, ..., 14 and 1, 3, ..., 15) normalise as ghost
    # BatchNorm in groups of 8 does over the batch reordered evens-then-odds, and the mean loss
    # is the mean of the halves', so parameters and losses agree over several steps. The running
    # averages do not: accumulation updates them once per micro-batch, in order
    # (m * (m * r + (1 - m) * s1) + (1 - m) * s2), ghost BatchNorm once with the groups' mean
    # (m * r + (1 - m) * (s1 + s2) / 2). Training-mode passes never read them, which is why the
    # parameters still agree.
    plain = ResNet(**TINY_RESNET)
    tx = optax.sgd(0.05, momentum=0.9)
    start = create_state(plain, tx, jax.random.key(0), (1, 8, 8, 3))
    accumulated = jax.jit(make_train_step(grad_accum_steps=2))
    ghost = jax.jit(make_train_step())
    s2, sg = start, start.replace(apply_fn=plain.clone(bn_group_size=8).apply)
    for t in range(3):
        batch = {"image": _images(10 + t, 16, (8, 8, 3)) * 2 + 0.5, "label": jnp.arange(16) % 5}
        evens_then_odds = jax.tree.map(lambda x: jnp.concatenate([x[0::2], x[1::2]]), batch)
        before = s2
        s2, m2 = accumulated(s2, batch, zero_train_metrics())
        sg, mg = ghost(sg, evens_then_odds, zero_train_metrics())
        np.testing.assert_allclose(float(m2["loss_sum"]), float(mg["loss_sum"]), rtol=1e-6)
        assert max_abs_diff(s2.params, sg.params) < 1e-6 and max_abs_diff(s2.opt_state, sg.opt_state) < 1e-6
        stats = before.batch_stats
        for half in (batch["image"][0::2], batch["image"][1::2]):  # one training-mode pass each, in order
            variables = {"params": before.params, "batch_stats": stats}
            stats = plain.apply(variables, half, train=True, mutable=["batch_stats"])[1]["batch_stats"]
        assert max_abs_diff(s2.batch_stats, stats) < 1e-5  # measured 5e-7
    assert max_abs_diff(s2.batch_stats, sg.batch_stats) > 1e-3
    whole = jax.jit(make_train_step())(start, batch, zero_train_metrics())[0]  # statistics over all 16 differ
    assert max_abs_diff(whole.params, accumulated(start, batch, zero_train_metrics())[0].params) > 1e-5


@pytest.mark.slow
def test_batchnorm_micro_batches_do_not_depend_on_the_device_count(tmp_path, data_dir):
    # ResNet-20, batch 32 as 2 micro-batches of 16: on one device and on 8 (2 examples of each
    # micro-batch per device) the runs agree as BatchNorm runs on 1 and 8 devices without
    # accumulation do (tests/test_train_loop.py; measured here: losses 4.3e-5 relative,
    # parameters 1.8e-4). Micro-batches cut from each device's block of examples would
    # normalise other sets of examples on 8 devices than on one.
    common = [
        "train",
        "--config",
        "configs/resnet_cifar.py:depth=20,cpu",
        "--config.batch_size=32",
        "--config.grad_accum_steps=2",
        "--config.num_train_steps=3",
        "--config.log_every_steps=1",
        "--config.optimizer.lr=0.01",
    ]
    assert run_cli([*common, "--num-devices", "1", "--workdir", tmp_path / "one"])[0] == 0
    assert run_cli([*common, "--workdir", tmp_path / "eight"])[0] == 0
    one, eight = train_losses(tmp_path / "one"), train_losses(tmp_path / "eight")
    np.testing.assert_allclose([eight[s] for s in (1, 2, 3)], [one[s] for s in (1, 2, 3)], rtol=1e-4)
    assert max_abs_diff(final_params(tmp_path / "one"), final_params(tmp_path / "eight")) < 3e-4


# --- the micro-batches stay where they are ---------------------------------------------------
def _collectives(k: int) -> dict:
    """How many of each cross-device operation the compiled LeNet-5 step on 8 devices holds."""
    mesh = parallel.make_mesh(8, (64,))
    repl = parallel.replicated(mesh)
    state = jax.device_put(_lenet_state(), repl)
    batch = parallel.to_global({"image": np.zeros((64, 32, 32, 1), np.float32), "label": np.zeros(64, np.int32)}, mesh)
    step = jax.jit(make_train_step(grad_accum_steps=k), out_shardings=(repl, repl))
    text = step.lower(state, batch, jax.device_put(zero_train_metrics(), repl)).compile().as_text()
    ops = ("all-reduce", "all-gather", "all-to-all", "collective-permute")
    return {op: len(re.findall(rf"\b{op}(-start)?\(", text)) for op in ops}


def test_no_example_moves_between_devices(monkeypatch):
    # The global batch is sharded on its first axis; interleaved micro-batches are cut from
    # each device's own examples, so the compiled step sums gradients (all-reduce) and moves
    # nothing else. Consecutive micro-batches would have to gather examples from other devices,
    # which this count catches.
    moved = ("all-gather", "all-to-all", "collective-permute")
    for k in (1, 4):
        counts = _collectives(k)
        assert counts["all-reduce"] >= 1 and not any(counts[op] for op in moved), (k, counts)

    def consecutive(batch, k):
        return jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), batch)

    monkeypatch.setattr(accumulate, "micro_batches", consecutive)
    assert any(_collectives(4)[op] for op in moved)


# --- mistakes ---------------------------------------------------------------------------------
def _error_line(capsys, args) -> str:
    code, _, err = run_cli(args, capsys)
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def test_the_mistakes_are_one_sentence_each(tmp_path, data_dir, capsys):
    lenet = ["--config", "configs/lenet5.py", "--config.batch_size=64"]
    line = _error_line(capsys, ["config", *lenet, "--config.grad_accum_steps=3"])
    assert "batch_size 64 is not divisible by grad_accum_steps 3" in line and "--config.grad_accum_steps" in line
    line = _error_line(capsys, ["config", *lenet, "--config.grad_accum_steps=0"])
    assert "grad_accum_steps must be a whole number" in line and "not 0" in line
    r20 = ["--config", "configs/resnet_cifar.py:depth=20,cpu", "--config.grad_accum_steps=2"]
    line = _error_line(capsys, ["config", *r20, "--config.bn_group_size=64"])
    assert "The micro-batch of 32 examples (batch_size 64 / grad_accum_steps 2)" in line
    assert "not divisible by bn_group_size 64" in line
    # 64 / 16 = 4 examples per micro-batch cannot be split over 8 devices.
    line = _error_line(capsys, ["train", *lenet, "--config.grad_accum_steps=16", "--workdir", tmp_path / "w"])
    assert "The micro-batch of 4 examples (batch_size 64 / grad_accum_steps 16)" in line
    assert "not divisible by the 8 devices" in line and "multiple of 128" in line


def test_each_process_needs_an_equal_share_of_a_micro_batch():
    c = base_config()
    c.batch_size, c.grad_accum_steps, c.num_train_steps = 6, 2, 1
    assert config_problems(c, processes=1) == []
    (problem,) = config_problems(c, processes=2)
    assert problem.startswith("The micro-batch of 3 examples") and "the 2 processes" in problem
