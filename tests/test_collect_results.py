"""tools/collect_results.py: what a suite's workdir becomes under experiments/results/ (finished
runs as data, unfinished ones with their newest checkpoint, RUNS.md with each run's command)."""

import json
import pathlib
import runpy

import pytest

SUITE = """
ENTRIES = [
    {"name": "three", "config": "configs/lenet5.py:fashion", "seeds": 2},
    {"name": "one", "config": "configs/resnet_cifar.py:depth=20", "overrides": {"batch_size": 8}},
    {"name": "queued", "config": "configs/lenet5.py"},
]
"""


@pytest.fixture
def collect(root):
    return runpy.run_path(str(root / "tools" / "collect_results.py"))["collect"]


def _run(path: pathlib.Path, seed: int, results: dict | None, checkpoints=(), logged_step=4, logged_epoch=1.0):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed}))
    (path / "metrics.jsonl").write_text(json.dumps({"step": logged_step, "epoch": logged_epoch}) + "\n")
    (path / "train.log").write_text("log\n")
    if results is not None:
        (path / "results.json").write_text(json.dumps(results))
    for step in checkpoints:
        (path / "checkpoints" / str(step)).mkdir(parents=True)
        (path / "checkpoints" / str(step) / "state").write_text(str(step))
        (path / "checkpoints" / str(step) / "commit_success.txt").write_text("/a/machine/path")


@pytest.fixture
def suite(tmp_path):
    suite_file = tmp_path / "suite.py"
    suite_file.write_text(SUITE)
    work = tmp_path / "runs"
    done = {"status": "completed", "top1": 0.9, "epochs": 2.0, "wall_time_s": 120.0}
    _run(work / "three" / "seed0", 0, done, checkpoints=(5,))
    _run(work / "three" / "seed1", 1, {"status": "preempted"}, checkpoints=(3, 6))
    _run(work / "one", 7, None, checkpoints=(4,), logged_step=2, logged_epoch=0.25)
    (work / "table.md").write_text("| table |\n")
    (work / "table.csv").write_text("table\n")
    return str(suite_file), work, tmp_path / "results"


def _rows(text: str) -> dict:
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {r[0].lstrip("| "): r[1:] for r in rows[1:]}


def test_finished_runs_are_copied_as_data_and_unfinished_ones_with_their_newest_checkpoint(collect, suite):
    suite_file, work, out = suite
    rows = _rows(collect(suite_file, work, out))
    assert set(rows) == {"three/seed0", "three/seed1", "one"}  # the queued entry has no run yet
    assert rows["three/seed0"][:5] == ["0", "completed", "90.00", "2.0", "2.0 min"]
    assert sorted(p.name for p in (out / "three" / "seed0").iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "results.json",
        "train.log",
    ]
    # Stopped by SIGTERM to be resumed: kept as in progress, at its newest checkpoint only,
    # without Orbax's markers that name the machine's path.
    assert rows["three/seed1"][:4] == ["1", "training", "–", "1.5 so far"]
    kept = out / "in_progress" / "three" / "seed1"
    assert not (out / "three" / "seed1").exists() and not (kept / "results.json").exists()
    assert [p.name for p in (kept / "checkpoints").iterdir()] == ["6"]
    assert [p.name for p in (kept / "checkpoints" / "6").iterdir()] == ["state"]
    # A single-seed entry shows the seed its config used; its command carries the overrides.
    assert rows["one"][:4] == ["7", "training", "–", "0.5 so far"]
    assert "--config.batch_size=8 --workdir" in rows["one"][-1] and "--config.seed" not in rows["one"][-1]
    assert "--config.seed=1 " in rows["three/seed1"][-1]
    assert (out / "table.md").read_text() == "| table |\n" and (out / "RUNS.md").exists()


def test_a_run_that_finished_since_leaves_in_progress(collect, suite):
    suite_file, work, out = suite
    collect(suite_file, work, out)
    done = {"status": "completed", "top1": 0.5, "epochs": 3.0, "wall_time_s": 60.0}
    (work / "three" / "seed1" / "results.json").write_text(json.dumps(done))
    rows = _rows(collect(suite_file, work, out))
    assert rows["three/seed1"][:5] == ["1", "completed", "50.00", "3.0", "1.0 min"]
    assert not (out / "in_progress" / "three").exists() and (out / "three" / "seed1" / "results.json").exists()
