"""CNN_JAX_MALLOC (cnn_jax.cpu.host_memory): with "keep", a jitted function's fresh output buffers
reuse pages the process already has instead of faulting new zeroed ones in every call."""

import json
import os
import subprocess
import sys

import pytest
from conftest import run_cli

from cnn_jax.cpu import host_memory
from cnn_jax.errors import UserError

# Every call writes a fresh 64 MB output, over glibc's largest mmap threshold (32 MB). Kept
# memory first grows to hold the outputs whose frees lag behind dispatch (~10 here), then
# stops faulting: the warm-up covers that. Even then the kept heap can grow by one output now
# and then (on a loaded machine, one output's pages within a few calls; the cause is not
# pinned down), so the test counts each call's faults and judges the median.
_FAULTS_PER_CALL = """
import json, resource, statistics
from cnn_jax.cpu.host_memory import keep_freed_memory
kept = keep_freed_memory()
import jax, jax.numpy as jnp
x = jnp.ones((16, 1024, 1024), jnp.float32)
double = jax.jit(lambda x: x * 2.0)
for _ in range(50):
    double(x).block_until_ready()
faults = []
for _ in range(15):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    double(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": statistics.median(faults), "pages": x.nbytes / resource.getpagesize()}))
"""


def _faults_per_call(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["CNN_JAX_MALLOC"] = mode
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_CALL], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(host_memory._glibc_mallopt() is None, reason="glibc's mallopt only")
def test_kept_memory_is_reused_without_page_faults():
    system, kept = _faults_per_call("system"), _faults_per_call("keep")
    assert not system["kept"] and kept["kept"]
    assert system["faults"] > 0.9 * system["pages"]  # every page of every output faulted in anew
    assert kept["faults"] < 0.05 * kept["pages"]


def test_auto_keeps_memory_only_without_an_accelerator_plugin(monkeypatch):
    monkeypatch.setattr(host_memory, "accelerator_plugin_installed", lambda: True)
    assert host_memory.keep_freed_memory({"CNN_JAX_MALLOC": "auto"}) is False
    assert host_memory.keep_freed_memory({"CNN_JAX_MALLOC": "system"}) is False
    assert host_memory.mode({}) == "auto"


def test_unknown_mode_is_one_sentence(monkeypatch, capsys):
    with pytest.raises(UserError, match="CNN_JAX_MALLOC='fast' is not a host memory mode; set it to one of"):
        host_memory.mode({"CNN_JAX_MALLOC": "fast"})
    monkeypatch.setenv("CNN_JAX_MALLOC", "fast")
    code, _, err = run_cli(["table", "--help"], capsys)
    assert code == 2 and err.count("\n") == 1 and "CNN_JAX_MALLOC" in err
