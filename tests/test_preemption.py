"""Preemption loses nothing: SIGTERM stops a run, in one process or in two, at a step every
process agrees on; the step is saved, results.json says `preempted`, the command exits with the
preempted status, and the same command resumes it to the uninterrupted run's state. Time-based
checkpoints come on the clock, between the step-based ones, and two processes save them at the
step process 0's clock chooses."""

import json
import signal

import pytest
from conftest import run_cli
from helpers import final_state, max_abs_diff, max_state_diffs
from processes import checkpoint_steps, distributed, finished, free_port, logged_steps, python, train, wait_for_step

from cnn_jax.train import preemption

# LeNet-5 with XLA's convolutions: one process of two devices and two processes of one device
# each run the same program with the same rounding, so every run here ends in the same state.
TOTAL, EVERY = 40, 20
ARGS = [
    "--config",
    "configs/lenet5.py",
    f"--config.num_train_steps={TOTAL}",
    f"--config.checkpoint_every_steps={EVERY}",
    "--config.log_every_steps=1",
    "--config.optimizer.lr=0.02",
    "--config.conv_impl=xla",
    "--config.keep_checkpoints=4",
    "--config.progress_bar=False",
]
STEPS_PER_EPOCH = 46  # 1,497 digits at batch 32
# The runs wait after logging step 30 until the stop is agreed, so that they stop after step 31
# whatever the machine's speed: mid-epoch, between checkpoints 20 and 40.
PAUSE, STOPPED = 30, 31

# The two processes' clocks: process 0's jumps a minute once it has logged step 25, process
# 1's stands still; both save step 26.
CLOCK_JUMPS_AFTER, ON_THE_CLOCK = 25, 26

# `cnn-jax ARGS` that, once it has logged step argv[1], waits until the stop is agreed: in one
# process, until its handler has seen the signal; in several, until every process has reported
# its step to JAX's preemption service, which then sets the stop at the next step. argv[2] > 0:
# process 0's clock of time-based checkpoints jumps a minute after that step, other clocks stand.
PAUSING = """
import sys, time
import jax
from cnn_jax import cli
from cnn_jax.train import preemption, reporting
pause, jump, write, logged = int(sys.argv[1]), int(sys.argv[2]), reporting.MetricsWriter.write, [0]
on_signal, seen = preemption.StopSignals._on_signal, []
def on_signal_seen(self, signum, frame):
    seen.append(signum)
    on_signal(self, signum, frame)
def agreed():
    if jax.process_count() == 1:
        return bool(seen)
    from jax._src import distributed
    return len(distributed.global_state.client.key_value_dir_get("PREEMPTION_CURRENT_COUNTER/")) == jax.process_count()
def write_then_wait(self, step, scalars):
    write(self, step, scalars)
    logged.append(step)
    deadline = time.time() + 120
    while step == pause and not agreed() and time.time() < deadline:
        time.sleep(0.05)
preemption.StopSignals._on_signal = on_signal_seen
reporting.MetricsWriter.write = write_then_wait
if jump:
    preemption.now = lambda: 61.0 if jax.process_index() == 0 and logged[-1] >= jump else 0.0
cli.main(sys.argv[3:])
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir, root):
    """The final state of the run trained without a stop: one process of two devices."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    finished(train([*ARGS, "--workdir", workdir], root, devices=2))
    return final_state(workdir)


def _assert_preempted(procs, workdir, saved: list) -> None:
    """Every process exited with the preempted status after saving STOPPED, and nothing later."""
    for p in procs:
        out = p.communicate(timeout=600)[0]
        assert p.returncode == preemption.PREEMPTED_EXIT_STATUS == 143, out[-3000:]
        assert f"at step {STOPPED} of {TOTAL} with its checkpoint saved" in out
    results = json.loads((workdir / "results.json").read_text())
    assert (results["status"], results["steps"], results["top1"]) == ("preempted", STOPPED, None)
    assert checkpoint_steps(workdir) == saved and max(logged_steps(workdir)) == STOPPED


def _assert_resumed_exactly(workdir, uninterrupted, out: str) -> None:
    assert f"resuming {workdir} from step {STOPPED}" in out
    assert json.loads((workdir / "results.json").read_text())["status"] == "completed"
    resumed = final_state(workdir)
    diffs = max_state_diffs(uninterrupted, resumed)
    assert all(d <= 1e-6 for d in diffs.values()), diffs
    assert max_abs_diff(resumed["params"], final_state(workdir, STOPPED)["params"]) > 1e-3  # it trained on


def test_sigterm_to_one_process_saves_its_step_and_the_same_command_resumes_exactly(tmp_path, root, uninterrupted):
    assert STOPPED % STEPS_PER_EPOCH and STOPPED % EVERY and STOPPED < TOTAL
    workdir = tmp_path / "w"
    victim = python(["-c", PAUSING, PAUSE, 0, "train", *ARGS, "--workdir", workdir], root, 2)
    wait_for_step([victim], workdir, PAUSE)
    victim.send_signal(signal.SIGTERM)
    _assert_preempted([victim], workdir, [EVERY, STOPPED])
    out = finished(train([*ARGS, "--workdir", workdir], root, devices=2))
    _assert_resumed_exactly(workdir, uninterrupted, out)


def test_sigterm_to_one_of_two_processes_stops_both_at_one_step_and_they_resume_exactly(tmp_path, root, uninterrupted):
    workdir, port = tmp_path / "w", free_port()
    # Time-based checkpoints as well: both processes must save the step process 0's clock chose.
    stopping = [*ARGS, "--config.checkpoint_every_minutes=1", "--workdir", workdir]
    procs = [
        python(["-c", PAUSING, PAUSE, CLOCK_JUMPS_AFTER, "train", *stopping, *distributed(i, port)], root)
        for i in range(2)
    ]
    wait_for_step(procs, workdir, PAUSE)
    procs[1].send_signal(signal.SIGTERM)  # process 0, the coordinator, hears of it from JAX's service
    _assert_preempted(procs, workdir, [EVERY, ON_THE_CLOCK, STOPPED])
    port = free_port()
    procs = [train([*ARGS, "--workdir", workdir, *distributed(i, port)], root) for i in range(2)]
    out = [finished(p) for p in procs][0]
    _assert_resumed_exactly(workdir, uninterrupted, out)


def test_stop_signals_a_repeated_sigterm_is_ignored_and_a_second_ctrl_c_aborts():
    # Python's own Ctrl-C handler, as in `cnn-jax`; pytest-xdist's workers start with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _check_stop_signals()
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_stop_signals():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with preemption.StopSignals(0) as stop:
        assert not stop.reached(1)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)  # during the save: no effect
        assert stop.reached(2) and stop.cause() == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    with preemption.StopSignals(0) as stop:
        signal.raise_signal(signal.SIGINT)  # the first Ctrl-C stops the run as SIGTERM does
        assert stop.reached(1) and stop.cause() == "SIGINT"
    with preemption.StopSignals(0) as stop:
        stop.after_last_step()
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C interrupts the final evaluation at once
            signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)  # still caught while the last checkpoint is written
        assert stop.cause() == "SIGTERM"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_preempted_run_does_not_overwrite_a_completed_result(tmp_path):
    from cnn_jax.config import base_config
    from cnn_jax.train import run_record

    results = tmp_path / "results.json"
    for before, after in [({"status": "completed", "top1": 0.9}, "completed"), ({"status": "failed"}, "preempted")]:
        results.write_text(json.dumps(before))
        run_record.record_failure(results, base_config(), preemption.Preempted(3, 9, "SIGTERM"), "preempted", steps=3)
        assert json.loads(results.read_text())["status"] == after


def _steps_saved_with_a_clock_that_jumps_a_minute_after_step_5(minutes, tmp_path, monkeypatch) -> list:
    """Checkpoint every 4 steps of 8, with a clock that stands still until step 5 is logged and
    is 61 seconds later from then on."""
    workdir = tmp_path / f"minutes_{minutes}"
    monkeypatch.setattr(preemption, "now", lambda: 61.0 if 5 in logged_steps(workdir) else 0.0)
    args = [
        "train",
        "--config",
        "configs/lenet5.py",
        "--config.num_train_steps=8",
        "--config.checkpoint_every_steps=4",
        f"--config.checkpoint_every_minutes={minutes}",
        "--config.keep_checkpoints=8",
        "--config.log_every_steps=1",
        "--config.progress_bar=False",
        "--num-devices=1",
        "--workdir",
        workdir,
    ]
    assert run_cli(args)[0] == 0
    return checkpoint_steps(workdir)


def test_checkpoint_every_minutes_saves_between_step_checkpoints(tmp_path, data_dir, monkeypatch):
    # Step 6 is the first step whose clock shows a minute since checkpoint 4; without the clock
    # the run saves [4, 8].
    assert _steps_saved_with_a_clock_that_jumps_a_minute_after_step_5(1, tmp_path, monkeypatch) == [4, 6, 8]
