"""Per-core XLA CPU devices: the host's cores exposed as separate devices before JAX starts
its backends, where data parallelism over them is faster than XLA's own threading."""

import os

import jax

from cnn_jax.cpu import onednn
from cnn_jax.errors import UserError

MAX_CPU_DEVICES = 8  # the split's gain is established on 2 cores (docs/performance.md); beyond 8 it is untested
_cpu_split = [0]  # CPU devices split_host_cpu made (0: it did not run or left XLA's default)


def cpu_device_count(value: str, cores: int, onednn_ready: bool = False) -> int:
    """CNN_JAX_CPU_DEVICES: "auto" is one device per core (at most MAX_CPU_DEVICES), or one
    device when oneDNN's convolutions run (they use every core themselves); N is N."""
    if value == "auto":
        return 1 if onednn_ready else max(1, min(cores, MAX_CPU_DEVICES))
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"CNN_JAX_CPU_DEVICES={value!r} is not a device count; set it to auto or a number >= 1.")
    return int(value)


def split_host_cpu(environ=os.environ) -> int:
    """Expose the host's cores as separate XLA CPU devices before JAX starts its backends,
    where that is faster.

    XLA's CPU ops parallelise poorly over 2-8 cores: a weight gradient (a long reduction over
    the pixels into a small C x O matrix) runs on about one core. Data parallelism over
    per-core devices splits every op by the batch instead, which speeds up ResNet-18/20
    training steps with XLA's convolutions (docs/performance.md). oneDNN's convolutions
    (conv_impl auto where it is installed) use every core inside each kernel, and there two
    devices make ResNet-18 slower, so "auto" leaves one device when oneDNN can run. It changes
    nothing on GPU/TPU, whose devices are the mesh there. An explicit
    --xla_force_host_platform_device_count in XLA_FLAGS wins.
    """
    if "xla_force_host_platform_device_count" in environ.get("XLA_FLAGS", ""):
        return 0
    value = environ.get("CNN_JAX_CPU_DEVICES", "auto")
    onednn_ready = value == "auto" and onednn.unavailable() is None
    n = cpu_device_count(value, len(os.sched_getaffinity(0)), onednn_ready)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends already started (a library caller): keep what they have
        return 0
    _cpu_split[0] = n
    return n


def split_count() -> int:
    """How many CPU devices split_host_cpu made (0: it did not run or left XLA's default)."""
    return _cpu_split[0]
