"""The persistent XLA compilation cache: a run loads the programs an earlier run of the same
model compiled instead of compiling them again.

The cache has a size limit, which makes JAX evict the least recently used programs and
take a file lock around every read and write: processes started together on one machine
(the processes of a run on localhost, a sweep's workers) can then share one directory
without reading a program another is still writing."""

import os
import pathlib

DEFAULT_DIR = "~/.cache/cnn_jax/xla"
MAX_BYTES = 4 * 2**30
# Programs that compile faster than this are not worth a file.
MIN_COMPILE_SECONDS = 1.0
# JAX's names for a program's file and its last-use record beside it (jax._src.lru_cache).
_PROGRAM, _LAST_USE = "-cache", "-atime"


def directory(environ=os.environ) -> str | None:
    """The cache's directory (CNN_JAX_CACHE_DIR), or None when CNN_JAX_COMPILATION_CACHE=0 turns it off."""
    if environ.get("CNN_JAX_COMPILATION_CACHE", "1") == "0":
        return None
    return os.path.expanduser(environ.get("CNN_JAX_CACHE_DIR", DEFAULT_DIR))


def record_last_use(path) -> None:
    """Give each program written without the size limit a last-use record: eviction reads one
    for every program and would fail on a cache written before."""
    path = pathlib.Path(path)
    if not path.is_dir():
        return
    for program in path.glob(f"*{_PROGRAM}"):
        last_use = program.with_name(program.name.removesuffix(_PROGRAM) + _LAST_USE)
        if not last_use.exists():
            last_use.write_bytes(program.stat().st_mtime_ns.to_bytes(8, "little"))


def enable(path) -> None:
    """Compile through the cache in `path` for the rest of this process."""
    import jax

    record_last_use(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
