"""Set-up for every test: 8 emulated CPU devices (set before JAX is imported anywhere) and the
tests' compilation cache."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pathlib  # noqa: E402

import pytest  # noqa: E402

from cnn_jax import compilation_cache  # noqa: E402

# The tests' own persistent compilation cache, apart from the one runs use: shared by the xdist
# workers and every command the tests run in-process or start, kept between test runs (the first
# run on a machine compiles every program; later runs load them). CNN_JAX_TEST_CACHE moves it.
CACHE = os.environ.setdefault("CNN_JAX_TEST_CACHE", os.path.expanduser("~/.cache/cnn_jax/xla-tests"))
os.environ["CNN_JAX_CACHE_DIR"] = CACHE
os.environ["CNN_JAX_COMPILATION_CACHE"] = "1"
compilation_cache.enable(CACHE)


ROOT = pathlib.Path(__file__).resolve().parents[1]

# The modules whose tests start real processes or train recipes, up to a minute each, run
# first: xdist hands tests out in this order, and one of them left to the end would keep one
# core busy while the other idles.
LONG_FIRST = ("test_resume_multiprocess.py", "test_preemption.py", "test_digits_recipes.py", "test_sweep.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A TFDS data directory with `digits` prepared once per pytest run (shared by xdist workers)."""
    # xdist workers' base directories share the run's directory; a run without xdist has its own.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "tfds"
    from cnn_jax.data.datasets import open_source

    open_source("digits", str(shared))
    os.environ["TFDS_DATA_DIR"] = str(shared)
    return str(shared)


def run_cli(args, capsys=None):
    """Run `cnn-jax ARGS` in this process; returns (exit code, stdout, stderr)."""
    from cnn_jax import cli

    try:
        cli.main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    if capsys is None:
        return code, "", ""
    out = capsys.readouterr()
    return code, out.out, out.err
