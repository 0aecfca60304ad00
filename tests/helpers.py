"""Small helpers shared by the training tests."""

import json
import pathlib

import jax
import numpy as np

from cnn_jax.config import base_config
from cnn_jax.train.evaluate import load_workdir_config
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.loop import build_run


def final_params(workdir, step=None) -> dict:
    """The parameters of a workdir's checkpoint (latest by default) as numpy arrays."""
    workdir = pathlib.Path(workdir)
    config = load_workdir_config(workdir)
    run = build_run(config, num_devices=1)
    ckpts = Checkpoints(workdir / "checkpoints")
    try:
        _, state, _ = ckpts.restore(run.state, step)
    finally:
        ckpts.close()
    return jax.tree.map(np.asarray, jax.device_get(state.params))


def max_abs_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def metrics(workdir) -> list:
    path = pathlib.Path(workdir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def train_losses(workdir) -> dict:
    return {m["step"]: m["train/loss"] for m in metrics(workdir) if "train/loss" in m}


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
    code, _, err = run_cli(["train", "--config", "configs/lenet5.py", f"--config.{switch.key}=cudnn",
                            "--config.num_train_steps=1", "--workdir", tmp_path / "w"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # beside library logs
    assert code == 2 and len(errors) == 1 and f"{switch.key} must be one of" in errors[0] and "'cudnn'" in errors[0]
