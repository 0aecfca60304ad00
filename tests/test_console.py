"""A command's output starts with its own lines: TensorFlow's native start-up lines and JAX's
search for accelerator backends stay out of the console unless CNN_JAX_VERBOSE=1."""

import os
import re
import subprocess
import sys

import pytest

# Each line a training run may print: its own log lines, its last line, and nothing else.
OWN_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING) |^lenet5 on digits: ")
CHATTER = ("absl::InitializeLog", "oneDNN custom operations", "Unable to initialize backend")


def _train(tmp_path, data_dir, verbose: str):
    env = dict(os.environ, CNN_JAX_VERBOSE=verbose, TFDS_DATA_DIR=data_dir)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the user's shell does not set it either
    args = [
        sys.executable,
        "-m",
        "cnn_jax",
        "train",
        "--config",
        "configs/lenet5.py",
        "--workdir",
        str(tmp_path / f"run{verbose}"),
        "--config.num_train_steps=2",
        "--config.num_epochs=-1",
        f"--config.data_dir={data_dir}",
    ]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return (done.stderr + done.stdout).splitlines()


def test_training_prints_only_its_own_lines(tmp_path, data_dir, root):
    os.chdir(root)
    lines = [line for line in _train(tmp_path, data_dir, "0") if line.strip()]
    strangers = [line for line in lines if not OWN_LINE.match(line)]
    assert lines and not strangers, f"lines that are not the command's own: {strangers[:5]}"


def test_verbose_lets_the_start_up_lines_through():
    # The test above can fail: these lines exist, and only the quiet mode hides them.
    code = (
        "from cnn_jax.train.reporting import setup_logging; setup_logging(None); "
        "import cnn_jax.data, jax; jax.devices()"
    )
    env = dict(os.environ, CNN_JAX_VERBOSE="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert any(mark in done.stderr for mark in CHATTER), done.stderr[-2000:]


@pytest.mark.parametrize("module", ["cnn_jax.data", "cnn_jax.train.reporting", "cnn_jax.train.suite"])
def test_importing_a_module_that_reaches_tensorflow_prints_nothing(module):
    # Commands reach TensorFlow through the input pipeline or through clu's metric writers.
    env = dict(os.environ, CNN_JAX_VERBOSE="0")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any(mark in done.stderr + done.stdout for mark in CHATTER), done.stderr[-2000:]
