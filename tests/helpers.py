"""Small helpers shared by the training tests."""

import json
import pathlib

import jax
import numpy as np

from cnn_jax.config import base_config
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.evaluate import load_workdir_config
from cnn_jax.train.loop import build_run


def final_state(workdir, step=None) -> dict:
    """What a workdir's checkpoint (latest by default) holds, as numpy arrays: params,
    batch_stats, opt_state and ema ({} without a weight average)."""
    workdir = pathlib.Path(workdir)
    config = load_workdir_config(workdir)
    run = build_run(config, num_devices=1)
    ckpts = Checkpoints(workdir / "checkpoints")
    try:
        _, state, _ = ckpts.restore(run.state, step)
    finally:
        ckpts.close()
    return _parts(state)


def initial_state(workdir) -> dict:
    """What the run of a workdir starts from, as `final_state` gives it."""
    return _parts(build_run(load_workdir_config(pathlib.Path(workdir)), num_devices=1).state)


def _parts(state) -> dict:
    parts = {"params": state.params, "batch_stats": state.batch_stats, "opt_state": state.opt_state, "ema": state.ema}
    return jax.tree.map(np.asarray, jax.device_get(parts))


def first_batch_losses(workdir) -> tuple:
    """The training loss of a run's first batch (with step 1's dropout masks) under its initial
    weights and under its latest checkpoint's. The first is the step-1 loss of metrics.jsonl;
    the second falls below it when the run's steps learned."""
    from cnn_jax.train import parallel
    from cnn_jax.train.steps import make_train_step, zero_train_metrics

    workdir = pathlib.Path(workdir)
    config = load_workdir_config(workdir)
    run = build_run(config, num_devices=1)
    ckpts = Checkpoints(workdir / "checkpoints")
    try:
        _, trained, _ = ckpts.restore(run.state)
    finally:
        ckpts.close()
    step = jax.jit(make_train_step(float(config.loss.label_smoothing), float(config.loss.aux_weight)))
    batch = parallel.to_global(next(run.pipeline.train_batches(0)), run.mesh)

    def loss(state) -> float:
        metrics = step(state.replace(step=jax.numpy.zeros_like(state.step)), batch, zero_train_metrics())[1]
        return float(metrics["loss_sum"]) / float(metrics["count"])

    return loss(run.state), loss(trained)


def final_params(workdir, step=None) -> dict:
    """The parameters of a workdir's checkpoint (latest by default) as numpy arrays."""
    return final_state(workdir, step)["params"]


def max_abs_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def metrics(workdir) -> list:
    path = pathlib.Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def train_losses(workdir) -> dict:
    return {m["step"]: m["train/loss"] for m in metrics(workdir) if "train/loss" in m}


def every_train_loss(workdir) -> list:
    """(step, loss) of every training record in metrics.jsonl, in the order written: a resumed
    run writes again the steps after its checkpoint, and both records are kept."""
    return [(m["step"], m["train/loss"]) for m in metrics(workdir) if "train/loss" in m]


def max_state_diffs(a: dict, b: dict) -> dict:
    """The largest absolute difference of each part of two `final_state`s; their trees must match."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    return {k: max_abs_diff(a[k], b[k]) if jax.tree.leaves(a[k]) else 0.0 for k in a}


def digits_config(batch=32, **data):
    """The base config at a global batch of `batch`, with `data.*` overrides."""
    c = base_config()
    c.batch_size = batch
    c.data.update(data)
    return c


def assert_unknown_impl_refused(switch, tmp_path, capsys):
    """A TraceSwitch (conv_impl, bn_impl, pool_impl, dense_impl) refuses an unknown name in Python (a
    UserError) and from the command line (one sentence naming the key, exit status 2)."""
    import pytest
    from conftest import run_cli

    from cnn_jax.errors import UserError

    with pytest.raises(UserError, match=switch.key):
        with switch.use("cudnn"):
            pass
    code, _, err = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py",
            f"--config.{switch.key}=cudnn",
            "--config.num_train_steps=1",
            "--workdir",
            tmp_path / "w",
        ],
        capsys,
    )
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # beside library logs
    assert code == 2 and len(errors) == 1 and f"{switch.key} must be one of" in errors[0] and "'cudnn'" in errors[0]
