"""Keep freed host memory in the process, so that each CPU training step reuses warm pages.

XLA's CPU runtime allocates a step's temporaries afresh on every call and frees them after.
glibc serves blocks over 32 MB with new mmaps (and non-main threads' arenas cannot hold them
at all), returns them to the kernel on free, and the kernel zero-fills every page again on
first touch: a ResNet-50 step faults all its large temporaries in again, page by page, on
every call, and with the memory kept it faults in none (the effect on whole training steps is in
docs/performance.md). Keeping it takes three glibc settings:
one arena (the main heap, which can grow past 64 MB), no mmap for large blocks, and no
trimming of the heap's top. The process's resident memory then stays at its peak.

CNN_JAX_MALLOC chooses: "keep", "system" (glibc's defaults), or "auto" (the default): keep
unless a GPU/TPU plugin is installed, where the host only feeds the accelerator and its
input pipeline's threads are better served by glibc's per-thread arenas.
"""

import ctypes
import importlib.util
import os

from cnn_jax.errors import UserError

MODES = ("auto", "keep", "system")
# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def mode(environ=os.environ) -> str:
    value = environ.get("CNN_JAX_MALLOC", "auto")
    if value not in MODES:
        raise UserError(
            f"CNN_JAX_MALLOC={value!r} is not a host memory mode; "
            f"set it to one of {', '.join(MODES)} (or unset it for auto)."
        )
    return value


def accelerator_plugin_installed() -> bool:
    """A PJRT plugin (CUDA/ROCm wheels install `jax_plugins.*`) or libtpu: JAX may not compute on the host."""
    return any(importlib.util.find_spec(name) is not None for name in ("jax_plugins", "libtpu"))


def _glibc_mallopt():
    """glibc's mallopt, or None (macOS, musl, Windows: their allocators have other policies)."""
    try:
        libc = ctypes.CDLL(None)
        # Only glibc has gnu_get_libc_version; musl's mallopt is a no-op.
        return libc.mallopt if hasattr(libc, "gnu_get_libc_version") else None
    except (OSError, AttributeError):
        return None


def keep_freed_memory(environ=os.environ) -> bool:
    """Apply CNN_JAX_MALLOC before JAX starts its threads; True when memory is now kept.

    glibc fixes how many arenas it makes when a second thread first allocates, and threads
    keep the arenas they have: called after any library started its threads (importing JAX
    starts some), the large blocks still fault in. So it belongs at the very start of a
    process: the CLI calls it first."""
    chosen = mode(environ)
    if chosen == "system" or (chosen == "auto" and accelerator_plugin_installed()):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # glibc stores the trim threshold as a size_t: -1 is "never trim".
    return all(
        mallopt(param, value) == 1 for param, value in ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))
    )
