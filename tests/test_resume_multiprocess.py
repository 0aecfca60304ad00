"""Real processes: a run killed with SIGKILL and restarted ends where an uninterrupted run
ends, and a two-process run (jax.distributed on localhost) reaches the single-process result."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import final_params, max_abs_diff, train_losses

LENET = ["--config", "configs/lenet5.py", "--config.log_every_steps=20", "--config.eval_every_steps=100"]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["CNN_JAX_COMPILATION_CACHE"] = "0"
    return env


def _train(args, devices=1, **kw):
    return subprocess.Popen([sys.executable, "-m", "cnn_jax", "train", *map(str, args)], env=_env(devices),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _finished_steps(workdir) -> list:
    d = workdir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def test_sigkill_then_same_command_reaches_the_uninterrupted_parameters(tmp_path, data_dir, root):
    args = [*LENET, "--config.num_train_steps=400", "--config.checkpoint_every_steps=20"]
    reference = _train(args + ["--workdir", tmp_path / "straight"], cwd=root)
    victim = _train(args + ["--workdir", tmp_path / "killed"], cwd=root)
    deadline = time.time() + 240
    while not [s for s in _finished_steps(tmp_path / "killed") if s >= 60] and time.time() < deadline:
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = max(_finished_steps(tmp_path / "killed"))
    assert 60 <= killed_at < 400, killed_at
    again = _train(args + ["--workdir", tmp_path / "killed"], cwd=root)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "resuming" in out
    assert reference.wait(timeout=300) == 0, reference.stdout.read()
    # Same data order, same RNG stream, same compiled program: equal to 1e-6.
    assert max_abs_diff(final_params(tmp_path / "straight"), final_params(tmp_path / "killed")) <= 1e-6
    assert train_losses(tmp_path / "straight")[400] == pytest.approx(train_losses(tmp_path / "killed")[400], abs=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_reach_the_single_process_result(tmp_path, data_dir, root):
    args = [*LENET, "--config.num_train_steps=30", "--config.checkpoint_every_steps=30",
            "--config.log_every_steps=10", "--config.eval_every_steps=30"]
    single = _train(args + ["--workdir", tmp_path / "single"], devices=2, cwd=root)
    port = _free_port()
    procs = [_train(args + ["--workdir", tmp_path / "multi", "--coordinator", f"127.0.0.1:{port}",
                            "--num-processes", "2", "--process-id", str(i)], devices=1, cwd=root)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert single.wait(timeout=300) == 0, single.stdout.read()
    assert max_abs_diff(final_params(tmp_path / "single"), final_params(tmp_path / "multi")) <= 1e-6
    import json
    res = json.loads((tmp_path / "multi" / "results.json").read_text())
    assert (res["processes"], res["devices"], res["eval_examples"]) == (2, 2, 300)
