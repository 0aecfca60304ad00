"""A clean console: a command's output starts with its own lines.

TensorFlow's C++ start-up logs through absl before absl is initialised, which no environment
variable silences (TF_CPP_MIN_LOG_LEVEL does not reach those lines), so its import runs with
the process's standard error pointed at /dev/null. JAX's note that no TPU backend was found
is an INFO line of its own logger. CNN_JAX_VERBOSE=1 lets all of it through.
"""

import contextlib
import logging
import os
import sys

# Loggers whose start-up lines are not the user's business unless verbose.
NOISY_LOGGERS = ("absl", "tensorflow", "jax._src", "orbax")


def verbose(environ=os.environ) -> bool:
    return environ.get("CNN_JAX_VERBOSE", "0") not in ("", "0")


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 goes to /dev/null inside the block (unless verbose); Python's own
    exceptions still propagate as usual."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """`import tensorflow` without its native start-up lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import tensorflow
    return tensorflow


def quiet_library_loggers() -> None:
    """Library loggers at WARNING (unless verbose)."""
    if verbose():
        return
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
