"""Real `cnn-jax` processes for the tests: started on emulated CPU devices, several joined
through jax.distributed on localhost, and what their workdirs hold while they run."""

import os
import socket
import subprocess
import sys
import time

from helpers import every_train_loss


def env(devices: int) -> dict:
    """This environment (the tests' compilation cache included) with `devices` emulated CPU devices."""
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def python(command, root, devices: int = 1) -> subprocess.Popen:
    """`python COMMAND` in the repository's root, its output and errors in one text stream."""
    return subprocess.Popen(
        [sys.executable, *map(str, command)],
        env=env(devices),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def train(args, root, devices: int = 1) -> subprocess.Popen:
    return python(["-m", "cnn_jax", "train", *args], root, devices)


def finished(proc, timeout: float = 600) -> str:
    """The process's output, once it has exited with status 0."""
    out = proc.communicate(timeout=timeout)[0]
    assert proc.returncode == 0, out[-3000:]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distributed(process_id: int, port: int, processes: int = 2) -> list:
    """The flags that make a run process `process_id` of `processes` on localhost."""
    return ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(process_id)]


def checkpoint_steps(workdir) -> list:
    d = workdir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def logged_steps(workdir) -> list:
    return [s for s, _ in every_train_loss(workdir)] if (workdir / "metrics.jsonl").exists() else []


def wait_for_step(procs, workdir, step: int, timeout: float = 600) -> None:
    """Wait until the run in `workdir` has logged `step`, its processes all still running."""
    deadline = time.time() + timeout
    while step not in logged_steps(workdir):
        assert all(p.poll() is None for p in procs), [p.stdout.read()[-3000:] for p in procs]
        assert time.time() < deadline, f"the run did not reach step {step}"
        time.sleep(0.1)
