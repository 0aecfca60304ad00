"""Real processes, on a run that uses every part of the training state (tests/configs/
every_part.py: BatchNorm statistics, dropout, random crops and flips, a weight average,
warm-up then cosine decay): a run killed with SIGKILL mid-epoch and restarted with the same
command ends where an uninterrupted run ends, and two processes (jax.distributed on
localhost), each decoding only its half of every batch, train like one."""

import json
import signal
import time

from helpers import every_train_loss, final_state, initial_state, max_abs_diff, max_state_diffs, train_losses
from processes import checkpoint_steps, distributed, finished, free_port, logged_steps, python, train, wait_for_step

EVERY_PART = ["--config", "tests/configs/every_part.py"]
STEPS_PER_EPOCH = 46  # 1,497 digits at batch 32
# Checkpoints every 16 steps; the victim is killed once it has logged step 52: mid-epoch 1,
# four steps after checkpoint 48 and before the last, 56.
TOTAL, EVERY = 56, 16
RESUME = [*EVERY_PART, f"--config.num_train_steps={TOTAL}", f"--config.checkpoint_every_steps={EVERY}"]
KILLED_AFTER, LAST_CHECKPOINT = 52, 48

# `cnn-jax ARGS` that stops where it is once it has logged step argv[1], so that the test can
# kill it there, after that step and before the next checkpoint, whatever the machine's speed.
STOPPING = """
import sys, time
from cnn_jax import cli
from cnn_jax.train import reporting
stop, write = int(sys.argv[1]), reporting.MetricsWriter.write
def write_then_stop(self, step, scalars):
    write(self, step, scalars)
    while step >= stop:
        time.sleep(1)
reporting.MetricsWriter.write = write_then_stop
cli.main(sys.argv[2:])
"""


def _kill_when_stopped(victim, workdir, timeout=600) -> None:
    """SIGKILL the victim once it has logged KILLED_AFTER and its checkpoint LAST_CHECKPOINT is complete."""
    deadline = time.time() + timeout
    while not (KILLED_AFTER in logged_steps(workdir) and LAST_CHECKPOINT in checkpoint_steps(workdir)):
        assert victim.poll() is None, victim.stdout.read()[-3000:]
        assert time.time() < deadline, "the victim did not reach its step"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait()


def _assert_trained(workdir) -> None:
    """The state holds a weight average and BatchNorm statistics, and the steps moved the weights
    far beyond the tolerance the runs are compared with."""
    state = final_state(workdir)
    assert state["ema"] and state["batch_stats"]
    assert max_abs_diff(state["params"], initial_state(workdir)["params"]) > 1e-2


def test_sigkill_mid_epoch_then_same_command_reaches_the_uninterrupted_state(tmp_path, data_dir, root):
    assert KILLED_AFTER % STEPS_PER_EPOCH and KILLED_AFTER % EVERY  # neither an epoch's end nor a checkpoint
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    victim = python(["-c", STOPPING, KILLED_AFTER, "train", *RESUME, "--workdir", killed], root)
    # The reference starts once the victim has compiled its initial state and step into the
    # tests' cache, and loads them from there.
    wait_for_step([victim], killed, 1)
    reference = train([*RESUME, "--workdir", straight], root)
    _kill_when_stopped(victim, killed)
    assert max(checkpoint_steps(killed)) == LAST_CHECKPOINT and max(logged_steps(killed)) == KILLED_AFTER
    out = finished(train([*RESUME, "--workdir", killed], root))
    assert f"from step {LAST_CHECKPOINT}" in out
    finished(reference)
    # Same data order, augmentation, dropout masks and compiled program: the same state and losses.
    diffs = max_state_diffs(final_state(straight), final_state(killed))
    assert all(d <= 1e-6 for d in diffs.values()), diffs
    _assert_trained(killed)
    expected = train_losses(straight)
    records = every_train_loss(killed)  # steps 49-52 twice: before the kill and after resuming
    assert sorted({s for s, _ in records}) == sorted(expected) == list(range(1, TOTAL + 1))
    assert len(records) == TOTAL + KILLED_AFTER - LAST_CHECKPOINT
    assert max(abs(loss - expected[s]) for s, loss in records) <= 1e-6
    results = [json.loads((d / "results.json").read_text()) for d in (straight, killed)]
    assert results[0]["top1"] == results[1]["top1"] and results[1]["status"] == "completed"


def test_two_processes_reach_the_single_process_state(tmp_path, data_dir, root):
    # Two processes of one device each against one process of two devices: the same mesh and
    # program, each process feeding half of every global batch. XLA's convolutions: oneDNN's
    # weight gradients round according to the threads each device gets (the process's cores over
    # its devices, which differ here), and BatchNorm on the digits amplifies any rounding
    # difference step after step (tests/test_train_loop.py). The reference runs in a process of
    # its own: this one's 8 emulated devices change XLA's rounding too.
    args = [*EVERY_PART, "--config.num_train_steps=12", "--config.checkpoint_every_steps=12", "--config.conv_impl=xla"]
    single = train([*args, "--workdir", tmp_path / "single"], root, devices=2)
    port = free_port()
    procs = [train([*args, "--workdir", tmp_path / "multi", *distributed(i, port)], root) for i in range(2)]
    for p in [*procs, single]:
        finished(p)
    diffs = max_state_diffs(final_state(tmp_path / "single"), final_state(tmp_path / "multi"))
    assert all(d <= 1e-6 for d in diffs.values()), diffs  # measured: 0 (the same rounding throughout)
    _assert_trained(tmp_path / "multi")
    one, two = train_losses(tmp_path / "single"), train_losses(tmp_path / "multi")
    assert sorted(one) == sorted(two) == list(range(1, 13))
    assert max(abs(one[s] - two[s]) for s in one) <= 1e-6
    # Each process reads by position and decodes only its half of every batch.
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("single", "multi"))
    assert one["train_examples_decoded"] == {"process 0": 12 * 32}
    assert two["train_examples_decoded"] == {"process 0": 12 * 16, "process 1": 12 * 16}
    assert (two["train_access"], two["processes"], two["devices"], two["eval_examples"]) == ("random", 2, 2, 300)
