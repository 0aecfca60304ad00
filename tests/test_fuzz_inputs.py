"""Fuzzing what a user types: config overrides across every key, config-file arguments, and the
flags of every command. Each draw runs in this process through the same code as the command
line and must end in success or in one sentence (a UserError, exit status 2, one line on
stderr); any other exception or a traceback fails the test with the draw that caused it.

The draws are derandomised (the same examples every run) and their number fixed, so the test
costs the same time each run; each test prints how many draws it made and how long they took
(shown with `pytest -rA`).
"""

import argparse
import contextlib
import importlib.util
import io
import time

from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_jax import cli
from cnn_jax.config import base_config
from cnn_jax.config_schema import SCHEMA, leaf_names
from cnn_jax.errors import UserError

# Draws per test: a config draw loads the config file and may trace a network (~0.2 s on 2
# shared cores); argument and command-line draws stop before any work (~0.01 s).
CONFIG_DRAWS, ARGUMENT_DRAWS, COMMAND_DRAWS = 150, 400, 400


def fuzz(draws: int):
    return settings(
        max_examples=draws, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


# Values no key should take, and some every key can: numbers at and past every kind of bound,
# the other types' spellings, paths, and strings the file system or a parser may choke on.
JUNK = [
    "0",
    "-1",
    "1",
    "2",
    "3",
    "-2",
    "7",
    "33",
    "1.5",
    "0.5",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "1e-320",
    str(2**31),
    str(2**63),
    str(-(2**63)),
    "True",
    "False",
    "None",
    "",
    " ",
    "()",
    "(1,)",
    "(30, 60)",
    "(60, 30)",
    "(1, 'a')",
    "[1, 2]",
    "{}",
    "{'a': 1}",
    "'x'",
    "abc",
    "auto",
    "2,9",
    "2,11",
    "sgd",
    "plateau",
    "backbone",
    "best_minival",
    "bfloat16",
    "resnet20",
    "vgg11",
    "resnet5O",
    "/",
    ".",
    "/dev/null",
    "/nonexistent/x",
    "-",
    "--x",
    "a\nb",
    "ü",
    "x" * 300,
    "a\x00b",
    "%s",
    "{0}",
    "(",
    ")",
]
MODELS = ["lenet5", "resnet20", "vgg11", "resnet5O", "", "LENET5"]  # heavy networks would trace for seconds
KEYS = [k for k in leaf_names(base_config()) if k != "model"] + ["model_kwargs.head", "model_kwargs.nope", "nope"]


def key_values(key: str) -> list:
    """Values near what `key` takes: its choices, its bounds and one past them."""
    entry = SCHEMA.get(key)
    if entry is None:
        return []
    out = [str(c) for c in entry.choices] if isinstance(entry.choices, tuple) else []
    for bound in (entry.low, entry.high):
        if bound is not None:
            out += [repr(bound), repr(bound - 1), repr(bound + 1), repr(bound * 10)]
    return out


@st.composite
def overrides(draw) -> list:
    pairs = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            pairs.append(f"--config.model={draw(st.sampled_from(MODELS))}")
            continue
        key = draw(st.sampled_from(KEYS))
        value = draw(
            st.one_of(
                st.sampled_from(JUNK),
                st.sampled_from(key_values(key) or JUNK),
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.integers(-(2**70), 2**70).map(str),
                st.text(max_size=12),
            )
        )
        pairs.append(f"--config.{key}={value}")
    return pairs


def run_quietly(args) -> tuple:
    """`cnn-jax ARGS` in this process: (exit status, stdout, stderr). Other exceptions propagate."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_success_or_one_sentence(args, code, err) -> None:
    assert code in (0, 2), (args, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, (args, err)


def report(what: str, draws: int, expected: int, start: float, record_property) -> None:
    seconds = time.perf_counter() - start
    print(f"{draws} {what} draws in {seconds:.1f} s: every one succeeded or ended in one sentence")
    record_property("draws", draws)
    assert draws >= expected


def test_config_overrides_succeed_or_fail_in_one_sentence(record_property):
    draws, start = [], time.perf_counter()

    @fuzz(CONFIG_DRAWS)
    @given(
        base=st.sampled_from(["configs/lenet5.py", "configs/lenet5.py:cpu", "configs/resnet_cifar.py:depth=20,cpu"]),
        pairs=overrides(),
    )
    def draw(base, pairs):
        draws.append(1)
        args = ["config", "--config", ROOT / base, *pairs]
        code, out, err = run_quietly(args)
        assert_success_or_one_sentence(args, code, err)
        assert code == 2 or "no problem found" in out

    draw()
    report("config-override", len(draws), CONFIG_DRAWS, start, record_property)


def _config_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_fuzz_config_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIGS = {p.stem: _config_module(p.stem) for p in sorted((ROOT / "configs").glob("*.py"))}
ARG_WORDS = [
    "depth",
    "alpha",
    "head",
    "epochs",
    "cpu",
    "owt",
    "bn",
    "v1",
    "v1_5",
    "val",
    "mnist",
    "fashion",
    "L",
    "k",
    "from",
    "mode",
    "size",
    "channels",
    "model",
    "data",
    "A",
    "A-LRN",
    "a_lrn",
    "D",
    "E",
    "F",
    "nope",
    "",
]


@st.composite
def config_args(draw) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        word = draw(st.sampled_from(ARG_WORDS))
        if draw(st.booleans()):
            word += "=" + draw(st.one_of(st.sampled_from(JUNK), st.sampled_from(["20", "50", "121", "0.25", "rbf"])))
        parts.append(word)
    return ",".join(parts)


def test_config_file_arguments_succeed_or_fail_in_one_sentence(record_property):
    draws, start = [], time.perf_counter()

    @fuzz(ARGUMENT_DRAWS)
    @given(name=st.sampled_from(sorted(CONFIGS)), arg=config_args())
    def draw(name, arg):
        draws.append(1)
        try:
            config = CONFIGS[name].get_config(arg or None)
        except UserError as e:
            assert str(e).endswith(".") and "\n" not in str(e), (name, arg, str(e))
            return
        assert hasattr(config, "keys"), (name, arg)

    draw()
    report("config-argument", len(draws), ARGUMENT_DRAWS, start, record_property)


class _Parsed(Exception):
    """Raised once a command's arguments parsed: the test stops there, before the command's work."""


@contextlib.contextmanager
def stop_after_parsing():
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse_args(self, args, namespace)
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_then_stop
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = parse_args


FLAGS = [
    "--workdir",
    "--batch-size",
    "--input-size",
    "--steps",
    "--warmup",
    "--num-classes",
    "--num-devices",
    "--num-processes",
    "--process-id",
    "--dtype",
    "--method",
    "--image",
    "--out",
    "--layer",
    "--trials",
    "--workers",
    "--seeds",
    "--protocol",
    "--step",
    "--weights",
    "--model",
    "--data",
    "--split",
    "--format",
    "--list",
    "--markdown",
    "--heartbeat",
    "--recipe",
    "--images",
    "--conv-impl",
    "--only",
    "--pool",
    "--class",
    "--allow-config-change",
    "--confirm-seeds",
    "--nope",
    "-h",
    "-x",
]
WORDS = ["lenet5", "resnet5O", "experiments/digits.py", "runs/x", "center", "10crop", "saliency", "x.png"]


@st.composite
def command_lines(draw) -> list:
    command = draw(st.sampled_from(sorted(cli.COMMANDS)))
    args = [command]
    if command in ("train", "config") and draw(st.integers(0, 3)):
        args += ["--config", str(ROOT / "configs" / "lenet5.py")]
    for _ in range(draw(st.integers(0, 6))):
        args.append(draw(st.one_of(st.sampled_from(FLAGS), st.sampled_from(WORDS), st.sampled_from(JUNK))))
    return args


def test_every_commands_flags_parse_or_fail_in_one_sentence(record_property):
    draws, start = [], time.perf_counter()

    @fuzz(COMMAND_DRAWS)
    @given(args=command_lines())
    def draw(args):
        draws.append(1)
        try:
            with stop_after_parsing():
                code, _, err = run_quietly(args)
        except _Parsed:
            return
        assert_success_or_one_sentence(args, code, err)

    draw()
    report("command-line", len(draws), COMMAND_DRAWS, start, record_property)
