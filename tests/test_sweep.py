"""Sweeps on Optuna with LeNet-5 on `digits`: a grid completes into a sorted table, a failing
or pruned trial does not stop the others, two worker processes share one SQLite study, and
an interrupted sweep resumes without redoing its finished trials. Also: every experiment
file (suites and sweeps) loads and names config files that exist."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import optuna
import pytest
from conftest import run_cli

from cnn_jax.errors import UserError
from cnn_jax.report import plots
from cnn_jax.report.table import rows_from_workdirs
from cnn_jax.sweeps.spec import grid_points, load_sweep
from cnn_jax.train.suite import load_suite

LRS = [0.0003, 0.001, 0.003, 0.01]


def _sweep_file(tmp_path, root, space, trials, steps=20, name="s", extra=""):
    """A test-local sweep file: LeNet-5 for `steps` steps, evaluated every `steps // 2`, ranked on
    150 training images held out as minival."""
    # data.cache off: an in-memory tf.data cache read partially then dropped can let an
    # evaluation see no example when a garbage collection lands at the wrong moment.
    overrides = {
        "num_train_steps": steps,
        "eval_every_steps": max(steps // 2, 1),
        "checkpoint_every_steps": 10,
        "log_every_steps": 10,
        "progress_bar": False,
        "data.cache": False,
        "data.minival_size": 150,
    }
    path = tmp_path / f"{name}.py"
    path.write_text(
        f'BASE = "{root}/configs/lenet5.py"\nOVERRIDES = {overrides!r}\nSPACE = {space!r}\n'
        f'TRIALS = {trials}\nSAMPLER = "grid"\n{extra}\n'
    )
    return path


def _study(workdir, name="s"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{workdir}/sweep.db")


def _csv(workdir):
    return list(csv.DictReader((workdir / "sweep.csv").open()))


def _results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def test_grid_sweep_completes_sorted_and_continues_without_rerunning(tmp_path, data_dir, root, capsys):
    f, wd = _sweep_file(tmp_path, root, {"optimizer.lr": LRS}, trials=4), tmp_path / "sweep"
    code, out, err = run_cli(["sweep", f, "--workdir", wd], capsys)
    assert code == 0, err
    rows = _csv(wd)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    assert sorted(float(r["optimizer.lr"]) for r in rows) == LRS  # each grid point once
    ranked = [float(r["minival_top1"]) for r in rows]  # the objective: minival, never the test split
    assert ranked == sorted(ranked, reverse=True) and [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    for r in rows:  # the table's numbers are the trials' results.json
        res = _results(wd / r["trial"])
        assert (res["status"], res["steps"], res["top1"], res["minival_top1"]) == (
            "completed",
            20,
            pytest.approx(float(r["top1"])),
            pytest.approx(float(r["minival_top1"])),
        )
        assert json.loads((wd / r["trial"] / "config.json").read_text())["optimizer"]["lr"] == float(r["optimizer.lr"])
    assert f"| 1 | {rows[0]['trial']} | COMPLETE | {100 * ranked[0]:.2f} |" in out
    assert (wd / "sweep.md").read_text() in out and (wd / "sweep.png").stat().st_size > 10_000
    # The table/plot path of `cnn-jax table --plot` on the same runs: one point per trial.
    dirs = sorted(wd.glob("trial_*"))
    points = plots.plot_accuracy_vs_macs(rows_from_workdirs(dirs), tmp_path / "acc.png")
    assert [p["top1"] for p in points] == pytest.approx([100 * _results(d)["top1"] for d in dirs])
    assert {p["macs"] for p in points} == {326_520} and {p["params"] for p in points} == {60_000}
    # The same command again: nothing is retrained, the same table comes out.
    stamps = {d.name: (d / "results.json").stat().st_mtime_ns for d in dirs}
    code, out2, _ = run_cli(["sweep", f, "--workdir", wd], capsys)
    assert code == 0 and len(_study(wd).trials) == 4
    assert {d.name: (d / "results.json").stat().st_mtime_ns for d in dirs} == stamps
    assert _csv(wd) == rows


def test_a_failing_trial_is_recorded_and_the_others_run(tmp_path, data_dir, root, capsys):
    # batch_size 12 does not divide over the 8 test devices: that trial fails at start-up.
    f, wd = _sweep_file(tmp_path, root, {"batch_size": [12, 32]}, trials=2), tmp_path / "sweep"
    code, out, err = run_cli(["sweep", f, "--workdir", wd], capsys)
    assert code == 0, err
    rows = _csv(wd)
    assert [(r["state"], r["batch_size"]) for r in rows] == [("COMPLETE", "32"), ("FAIL", "12")]
    assert "batch_size" in rows[1]["error"] and "8" in rows[1]["error"] and rows[1]["top1"] == ""
    assert 0.0 < float(rows[0]["top1"]) <= 1.0 and _results(wd / rows[0]["trial"])["status"] == "completed"
    failed = next(t for t in _study(wd).trials if t.state.name == "FAIL")
    assert failed.user_attrs["error"].startswith("UserError:")


def test_pruning_stops_a_trial_at_an_intermediate_evaluation(tmp_path, data_dir, root, capsys):
    # No minival top-1 reaches 1.01: the threshold pruner stops the trial at its first evaluation.
    f = _sweep_file(
        tmp_path, root, {"optimizer.lr": [0.003]}, trials=1, steps=20, extra='PRUNER = ("threshold", {"lower": 1.01})'
    )
    wd = tmp_path / "sweep"
    assert run_cli(["sweep", f, "--workdir", wd], capsys)[0] == 0
    (trial,) = _study(wd).trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [10]
    res = _results(wd / "trial_0000")
    assert res["status"] == "pruned" and "step 10" in res["error"]
    val = [json.loads(line) for line in (wd / "trial_0000" / "metrics.jsonl").read_text().splitlines()]
    val = [m for m in val if "minival/top1" in m]
    assert [m["step"] for m in val] == [10] and trial.intermediate_values[10] == pytest.approx(val[0]["minival/top1"])
    row = _csv(wd)[0]
    assert row["state"] == "PRUNED" and float(row["minival_top1"]) == pytest.approx(val[0]["minival/top1"])


def test_two_workers_share_one_sqlite_study(tmp_path, data_dir, root, capsys):
    f, wd = _sweep_file(tmp_path, root, {"optimizer.lr": LRS}, trials=4), tmp_path / "sweep"
    code, out, err = run_cli(["sweep", f, "--workdir", wd, "--workers", "2"], capsys)
    assert code == 0, err
    trials = _study(wd).trials
    assert len(trials) == 4 and {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.params["optimizer.lr"] for t in trials) == LRS
    assert sorted(t.user_attrs["workdir"] for t in trials) == [f"trial_{i:04d}" for i in range(4)]
    # This process is one worker, a child process the other: both ran trials of the one study.
    pids = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials}
    assert len(pids) == 2 and os.getpid() in pids
    assert [r["state"] for r in _csv(wd)] == ["COMPLETE"] * 4


class Killed(BaseException):
    """What SIGKILL does to a worker, in this process: Optuna records nothing (the trial stays
    RUNNING), the heartbeat stops, the checkpoints written so far stay on disk."""


def _interrupt_trial_1_at_step_20(monkeypatch, exception):
    """Make the training of trial_0001 stop at its evaluation of step 20 (after its checkpoint)."""
    from cnn_jax.train import loop

    real, fired = loop.train_and_evaluate, []

    def train_and_evaluate(config, workdir, *args, on_eval=None, **kwargs):
        def hook(step, val):
            on_eval(step, val)
            if pathlib.Path(workdir).name == "trial_0001" and step == 20 and not fired:
                fired.append(step)
                raise exception

        return real(config, workdir, *args, on_eval=hook, **kwargs)

    monkeypatch.setattr(loop, "train_and_evaluate", train_and_evaluate)


@pytest.mark.parametrize("how", ["killed", "ctrl-c"])
def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(
    tmp_path, data_dir, root, capsys, monkeypatch, how
):
    lrs = LRS[1:3]
    f, wd = _sweep_file(tmp_path, root, {"optimizer.lr": lrs}, trials=2, steps=40), tmp_path / "sweep"
    args = ["sweep", f, "--workdir", wd, "--heartbeat", "1"]
    _interrupt_trial_1_at_step_20(monkeypatch, Killed() if how == "killed" else KeyboardInterrupt())
    if how == "killed":
        with pytest.raises(Killed):
            run_cli(args, capsys)
        assert [t.state.name for t in _study(wd).trials] == ["COMPLETE", "RUNNING"]
    else:
        code, _, err = run_cli(args, capsys)
        assert code == 130 and "interrupted" in err
        # Ctrl-C re-queues the trial at once.
        assert [t.state.name for t in _study(wd).trials] == ["COMPLETE", "FAIL", "WAITING"]
    first = wd / "trial_0000"
    before = {p: (first / p).read_bytes() for p in ("results.json", "metrics.jsonl")}
    assert not (wd / "trial_0001" / "results.json").exists() and _checkpoints(wd / "trial_0001") == [10, 20]
    code, out, err = run_cli(args, capsys)  # the same command again
    assert code == 0, err
    assert {p: (first / p).read_bytes() for p in before} == before  # trial 0 not redone
    rows = _csv(wd)
    assert sorted(r["trial"] for r in rows) == ["trial_0000", "trial_0001"]
    assert [r["state"] for r in rows] == ["COMPLETE"] * 2 and sorted(float(r["optimizer.lr"]) for r in rows) == lrs
    # Trial 1 was re-queued (after its heartbeat went stale, or at once for Ctrl-C) as trial 2,
    # which resumed from trial 1's step-20 checkpoint in trial 1's workdir.
    stale, retry = _study(wd).trials[1:]
    assert (stale.state.name, retry.state.name, retry.system_attrs["failed_trial"]) == ("FAIL", "COMPLETE", 1)
    assert retry.params == stale.params and retry.user_attrs["workdir"] == "trial_0001"
    assert retry.intermediate_values == {20: stale.intermediate_values[20], 40: pytest.approx(retry.value)}
    assert f"resuming {wd / 'trial_0001'} from step 20" in (wd / "trial_0001" / "train.log").read_text()
    steps = [json.loads(line)["step"] for line in (wd / "trial_0001" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 40 and _results(wd / "trial_0001")["steps"] == 40


def _checkpoints(run_dir) -> list:
    d = run_dir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


@pytest.mark.slow
def test_a_sigkilled_sweep_process_resumes(tmp_path, data_dir, root, capsys):
    """The same as above with a real process and a real SIGKILL in the middle of training."""
    f, wd = _sweep_file(tmp_path, root, {"optimizer.lr": LRS[1:3]}, trials=2, steps=200), tmp_path / "sweep"
    args = ["sweep", str(f), "--workdir", str(wd), "--heartbeat", "1"]
    victim = subprocess.Popen(
        [sys.executable, "-m", "cnn_jax", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 180
    while not [s for s in _checkpoints(wd / "trial_0001") if s >= 40] and time.time() < deadline:
        assert victim.poll() is None, victim.stdout.read()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = max(_checkpoints(wd / "trial_0001"))
    assert 40 <= killed_at < 200 and not (wd / "trial_0001" / "results.json").exists()
    before = (wd / "trial_0000" / "results.json").read_bytes()
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert (wd / "trial_0000" / "results.json").read_bytes() == before
    assert [r["state"] for r in _csv(wd)] == ["COMPLETE"] * 2
    assert f"resuming {wd / 'trial_0001'} from step {killed_at}" in (wd / "trial_0001" / "train.log").read_text()
    assert _results(wd / "trial_0001")["steps"] == 200


def test_sweep_file_mistakes_are_user_errors(tmp_path, root):
    bad_key = _sweep_file(tmp_path, root, {"optimizer.lrr": [0.1]}, trials=1, name="k")
    with pytest.raises(UserError, match="did you mean 'lr'"):
        load_sweep(bad_key)
    bad_space = _sweep_file(tmp_path, root, {"optimizer.lr": ("log", 0.1, 0.01)}, trials=1, name="r")
    with pytest.raises(UserError, match="lo < hi"):
        load_sweep(bad_space)
    continuous_grid = _sweep_file(tmp_path, root, {"optimizer.lr": ("float", 0.01, 0.1)}, trials=1, name="g")
    with pytest.raises(UserError, match="grid cannot enumerate"):
        load_sweep(continuous_grid)
    # A study cannot be continued from a different sweep definition.
    from cnn_jax.sweeps import runner

    f, wd = _sweep_file(tmp_path, root, {"optimizer.lr": [0.003]}, trials=1, name="same"), tmp_path / "wd"
    wd.mkdir()
    runner.open_study(load_sweep(f), runner.open_storage(runner.default_storage(wd), 1), "same")
    f.write_text(f.read_text().replace("0.003", "0.004").replace("TRIALS = 1", "TRIALS = 5"))
    with pytest.raises(UserError, match=r"differs in space\)"):
        runner.open_study(load_sweep(f), runner.open_storage(runner.default_storage(wd), 1), "same")


def _cifar_paper_top1(root) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_resnet_cifar_config", root / "configs" / "resnet_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PAPER_TOP1


def _config_file(spec: str, root: pathlib.Path) -> pathlib.Path:
    return root / spec.partition(":")[0]


@pytest.mark.parametrize("suite, count", [("seed_table", 8), ("imagenet_classic", 21), ("cifar10_resnet", 5)])
def test_suites_load_and_name_existing_configs(root, suite, count):
    entries = load_suite(root / "experiments" / f"{suite}.py")
    assert len(entries) == count
    missing = [e["config"] for e in entries if not _config_file(e["config"], root).is_file()]
    assert not missing, f"config files not (yet) in configs/: {missing}"
    from cnn_jax.models.registry import reference_numbers

    column = "keras" if suite == "seed_table" else "paper"
    for e in entries:  # published numbers are the reference's, entry names are model names
        ref = reference_numbers().get(e["name"])
        if suite == "cifar10_resnet":
            assert e["published"]["top1"] == _cifar_paper_top1(root)[int(e["name"].removeprefix("resnet"))]
        else:
            assert (e["published"]["top1"], e["published"].get("top5")) == (
                ref[f"{column}_top1"],
                ref[f"{column}_top5"],
            )
        assert e["published"]["source"]


def test_the_digits_lr_sweep_is_a_four_point_grid(root):
    s = load_sweep(root / "experiments" / "sweeps" / "digits_lr.py")
    assert (s.sampler, s.budget(), s.objective) == ("grid", 4, "top1")
    assert [p["optimizer.lr"] for p in grid_points(s.space)] == [0.0003, 0.001, 0.003, 0.01]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_draws_depend_on_the_trial_number_not_the_worker(root, sampler):
    # Two studies stand for two workers: trial k draws the same values in both, and
    # different trials draw different values, so parallel workers never repeat each other.
    import dataclasses

    from cnn_jax.sweeps.spec import make_sampler, suggest

    s = dataclasses.replace(
        load_sweep(root / "experiments" / "sweeps" / "digits_lr.py"),
        sampler=sampler,
        space={"optimizer.lr": {"kind": "log", "lo": 1e-4, "hi": 1e-1}},
    )
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=make_sampler(s), direction="maximize")
        values = []
        for _ in range(4):
            trial = study.ask()
            values.append(suggest(trial, "optimizer.lr", s.space["optimizer.lr"]))
            study.tell(trial, values[-1])
        draws.append(values)
    assert draws[0] == draws[1] and len(set(draws[0])) == 4
    assert all(1e-4 <= v <= 1e-1 for v in draws[0])
