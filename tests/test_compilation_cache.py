"""The persistent compilation cache: where it is, that it can be turned off, and that a cache
written before it had a size limit takes new programs (eviction reads a last-use record for
every program)."""

import subprocess
import sys

from cnn_jax import compilation_cache

# Compiles one program through a cache holding a program written without a last-use record,
# and prints JAX's warnings (a failed write is one) and the cache's files.
WRITE = """
import pathlib, sys, warnings
import jax, jax.numpy as jnp
from cnn_jax import compilation_cache
cache = pathlib.Path(sys.argv[1])
cache.mkdir()
(cache / "jit_old-0123-cache").write_bytes(b"an earlier program")
compilation_cache.enable(cache)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    jax.jit(lambda x: jnp.sin(x) * 3)(jnp.ones(7)).block_until_ready()
print("warnings:", [str(w.message) for w in caught])
print("files:", sorted(p.name for p in cache.iterdir()))
"""


def test_directory_follows_the_environment():
    assert compilation_cache.directory({}).endswith("/.cache/cnn_jax/xla")
    assert compilation_cache.directory({"CNN_JAX_CACHE_DIR": "/x/y"}) == "/x/y"
    assert compilation_cache.directory({"CNN_JAX_COMPILATION_CACHE": "0", "CNN_JAX_CACHE_DIR": "/x/y"}) is None


def test_an_earlier_cache_takes_new_programs(tmp_path):
    cache = tmp_path / "xla"
    done = subprocess.run([sys.executable, "-c", WRITE, cache], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "warnings: []" in done.stdout, done.stdout
    files = sorted(p.name for p in cache.iterdir())
    assert [f for f in files if f.startswith("jit__lambda") and f.endswith("-cache")], files
    # Every program has its last-use record, the earlier one stamped with its file's time.
    assert {f.removesuffix("-cache") + "-atime" for f in files if f.endswith("-cache")} <= set(files)
    assert ".lockfile" in files  # reads and writes went through the lock
