"""A replicated state on CPU is saved without Orbax's replica slices, each of which would be
a program compiled for its device (cnn_jax/train/checkpoint.py), and restores unchanged."""

import jax
import numpy as np
from helpers import digits_config

from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.loop import build_run


def test_a_replicated_state_on_eight_cpu_devices_is_saved_whole_and_restores(tmp_path, caplog):
    config = digits_config()  # LeNet-5: its 120- and 84-wide layers divide over 8 replicas
    config.num_train_steps = 1
    state = build_run(config, num_devices=8).state
    ckpts = Checkpoints(tmp_path / "checkpoints")
    jax.config.update("jax_log_compiles", True)  # the save's threads log their compiles too
    try:
        ckpts.save(0, state, {"wall_time_s": 0.0})
        ckpts.manager.wait_until_finished()
    finally:
        jax.config.update("jax_log_compiles", False)
    assert not [r.getMessage() for r in caplog.records if "jit(slice)" in r.getMessage()]
    step, restored, _ = ckpts.restore(state)
    ckpts.close()
    assert step == 0
    pairs = zip(jax.tree.leaves(jax.device_get(state.params)), jax.tree.leaves(jax.device_get(restored.params)))
    assert all(np.array_equal(a, b) for a, b in pairs)
