"""On a CPU-only host the CLI splits the cores into XLA devices (cnn_jax.cpu.devices.split_host_cpu),
so the batch is data-parallel over cores; a batch the devices do not divide uses fewer of them."""

import json
import os
import subprocess
import sys

import pytest

from cnn_jax.cpu import devices
from cnn_jax.errors import UserError
from cnn_jax.train import parallel


def test_device_count_from_the_environment():
    assert devices.cpu_device_count("auto", 2) == 2
    assert devices.cpu_device_count("auto", 64) == devices.MAX_CPU_DEVICES == 8
    assert devices.cpu_device_count("3", 2) == 3
    # oneDNN's kernels take every core themselves; two devices make ResNet-18 slower (docs/performance.md)
    assert devices.cpu_device_count("auto", 2, onednn_ready=True) == 1
    assert devices.cpu_device_count("3", 2, onednn_ready=True) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(UserError, match="CNN_JAX_CPU_DEVICES"):
            devices.cpu_device_count(bad, 2)


def test_largest_divisor_of_every_batch_size():
    assert parallel.largest_divisor(8, (12, 20)) == 4
    assert parallel.largest_divisor(2, (7,)) == 1
    assert parallel.largest_divisor(3, (6, 12)) == 3
    assert parallel.largest_divisor(8, ()) == 8


def test_explicit_xla_device_count_wins():
    assert devices.split_host_cpu({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}) == 0


def _bench_devices(batch_size: int, env_extra: dict) -> int:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(env_extra)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnn_jax",
            "bench",
            "lenet5",
            "--batch-size",
            str(batch_size),
            "--num-classes",
            "10",
            "--steps",
            "1",
            "--warmup",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["devices"]


def test_cli_splits_the_cpu_and_fits_the_batch():
    assert _bench_devices(6, {"CNN_JAX_CPU_DEVICES": "3"}) == 3
    assert _bench_devices(4, {"CNN_JAX_CPU_DEVICES": "3"}) == 2  # 4 is not divisible by 3
    assert _bench_devices(6, {"CNN_JAX_CPU_DEVICES": "1"}) == 1
    assert _bench_devices(6, {"XLA_FLAGS": "--xla_force_host_platform_device_count=6", "CNN_JAX_CPU_DEVICES": "3"}) == 6
