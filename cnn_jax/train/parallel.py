"""One mesh over every device of every process; batches sharded on `data`, state replicated.

`jax.jit` with these shardings is JAX's supported form of data parallelism (pmap
is in maintenance mode), and BatchNorm statistics then cover the global batch.
"""

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cnn_jax.cpu.devices import split_count as devices_split
from cnn_jax.errors import UserError


def maybe_initialize_distributed(coordinator: str = "", num_processes: int = 0, process_id: int = -1) -> None:
    """Start JAX's multi-process runtime when asked to, before any device is touched.

    Explicit flags, or auto-detection (SLURM, Open MPI, TPU pods) when the
    environment variable CNN_JAX_DISTRIBUTED=1 is set.
    """
    if coordinator:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    elif os.environ.get("CNN_JAX_DISTRIBUTED") == "1":
        jax.distributed.initialize()


def largest_divisor(n: int, sizes) -> int:
    """The largest d <= n that divides every size."""
    return max(d for d in range(1, n + 1) if all(int(s) % d == 0 for s in sizes))


def make_mesh(num_devices: int = 0, batch_sizes=()) -> Mesh:
    """A 1-D `data` mesh over all devices (or the first `num_devices`, for tests and benchmarks).

    Devices that cnn_jax.cpu.devices.split_host_cpu carved out of one CPU are a speed device, not the user's
    hardware: a batch they do not divide runs on fewer of them instead of failing."""
    devices = jax.devices()
    if num_devices:
        if jax.process_count() > 1:
            raise UserError("num_devices cannot be limited in a multi-process run; leave it at 0.")
        devices = devices[:num_devices]
    elif devices_split() > 1 and devices[0].platform == "cpu" and jax.process_count() == 1:
        devices = devices[: largest_divisor(len(devices), batch_sizes)]
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_divisible(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise UserError(
            f"{what} {batch_size} is not divisible by the {n} devices; set --config.{what} to a multiple of {n}."
        )


def to_global(batch: dict, mesh: Mesh) -> dict:
    """This process's numpy slice of the global batch -> one array sharded over all devices."""
    sharding = data_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def per_process(value: int) -> list:
    """An int of every process, in process order. A collective: every process must call it."""
    if jax.process_count() == 1:
        return [int(value)]
    from jax.experimental import multihost_utils

    return [int(v) for v in np.asarray(multihost_utils.process_allgather(np.int32(value))).ravel()]


def prefetch_to_mesh(batches, mesh: Mesh, depth: int = 2):
    """Keep `depth` batches already transferred, so the copy overlaps the step."""
    queue = []
    for batch in batches:
        queue.append(to_global(batch, mesh))
        if len(queue) > depth - 1:
            yield queue.pop(0)
    yield from queue
