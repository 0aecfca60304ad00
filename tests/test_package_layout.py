"""The packages keep their jobs: model families use only the building blocks, kernels and
switches live outside models/, and the CPU package applies the memory setting before JAX."""

import ast
import pathlib
import subprocess
import sys

import cnn_jax

PACKAGE = pathlib.Path(cnn_jax.__file__).parent
# What a kernel, an FFI call, a custom VJP or a switch looks like in source.
KERNEL_MARKS = (
    "custom_vjp",
    "custom_jvp",
    "jax.ffi",
    "ffi_call",
    "TraceSwitch",
    "ctypes",
    "lax.conv_general_dilated",
    "defvjp",
)
NOT_FAMILIES = {"__init__.py", "registry.py"}
FAMILY_IMPORTS = ("cnn_jax.layers", "cnn_jax.models", "cnn_jax.errors")


def imported_modules(path: pathlib.Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def kernel_marks(path: pathlib.Path) -> list:
    text = path.read_text()
    return [mark for mark in KERNEL_MARKS if mark in text]


def test_no_module_in_models_defines_a_kernel_or_switch():
    offenders = {p.name: kernel_marks(p) for p in (PACKAGE / "models").glob("*.py") if kernel_marks(p)}
    assert not offenders, f"kernels or switches in models/: {offenders}"


def test_kernel_marks_are_recognised():
    # The check above can fail: the CPU package is full of what it looks for.
    assert kernel_marks(PACKAGE / "cpu" / "onednn.py")
    assert "TraceSwitch" in kernel_marks(PACKAGE / "layers" / "switch.py")


def test_family_files_import_only_the_building_blocks():
    for path in (PACKAGE / "models").glob("*.py"):
        if path.name in NOT_FAMILIES:
            continue
        ours = {m for m in imported_modules(path) if m.startswith("cnn_jax")}
        wrong = sorted(
            m
            for m in ours
            if not any(m == p or m.startswith(p + ".") for p in FAMILY_IMPORTS) or m.startswith("cnn_jax.layers.")
        )
        assert not wrong, f"{path.name} imports {wrong}; a family imports the package cnn_jax.layers only"


def test_library_modules_hold_no_argument_parsing():
    parsers = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "argparse" in imported_modules(p) and p.parent.name != "cli"
    )
    assert not parsers, f"argument parsing outside cnn_jax/cli: {parsers}"


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_cpu_package_and_cli_import_without_jax():
    out = _run("import sys, cnn_jax.cpu, cnn_jax.cpu.host_memory, cnn_jax.cli; print('jax' in sys.modules)")
    assert out == "False"


def test_cli_applies_host_memory_before_jax_is_imported():
    # The CLI's first act is the memory setting: glibc fixes its arenas when threads start.
    code = """
import sys
from cnn_jax.cpu import host_memory
seen = []
host_memory.keep_freed_memory = lambda *a, **k: seen.append('jax' in sys.modules)
from cnn_jax import cli
try:
    cli.main(['summary', '--list'])
except SystemExit:
    pass
print(seen, 'jax' in sys.modules)
"""
    assert _run(code).splitlines()[-1] == "[False] True"
