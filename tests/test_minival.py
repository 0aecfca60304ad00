"""Selection without the test split: minival is a fixed, seed-free part of the training split
that training never reads; the best checkpoint, a plateau schedule and sweeps read it and
nothing else; results.json says which checkpoint it reports and why; the final evaluation
writes per-example predictions that agree exactly with results.json."""

import json
import zipfile

import jax
import numpy as np
import pytest
from conftest import run_cli
from helpers import digits_config, metrics
from processes import distributed, finished, free_port, train

from cnn_jax.data.datasets import open_source
from cnn_jax.data.minival import minival_positions
from cnn_jax.data.pipeline import Pipeline, steps_per_epoch
from cnn_jax.errors import UserError
from cnn_jax.train import predictions

LENET = ["--config", "configs/lenet5.py", "--config.progress_bar=False", "--config.log_every_steps=5"]


def _results(workdir) -> dict:
    return json.loads((workdir / "results.json").read_text())


def _checkpoints(workdir) -> list:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_minival_is_fixed_disjoint_from_what_training_reads_and_free_of_the_seed(data_dir):
    source = open_source("digits")
    pipe = Pipeline(source, digits_config(32, minival_size=150))
    minival, train = pipe.positions("minival"), pipe.positions("train")
    assert minival.tolist() == minival_positions(1497, 150, 0).tolist() and len(set(minival)) == 150
    assert not set(minival) & set(train) and sorted([*minival, *train]) == list(range(1497))
    assert pipe.num_train == len(train) == 1347 and steps_per_epoch(pipe.num_train, 32) == 42
    # Evaluating minival reads those examples, once each, by their positions in the split.
    index = np.concatenate([b["index"][b["mask"] > 0] for b in pipe.eval_batches(64, minival=True)])
    assert index.tolist() == minival.tolist()
    # The run's seed changes the training order, not minival; minival_seed chooses another carve.
    reseeded = digits_config(32, minival_size=150)
    reseeded.seed = 7
    assert Pipeline(source, reseeded).positions("minival").tolist() == minival.tolist()
    other = Pipeline(source, digits_config(32, minival_size=150, minival_seed=1)).positions("minival")
    assert len(other) == 150 and other.tolist() != minival.tolist()
    # A smaller minival is part of a larger one (the carve is a prefix of one permutation).
    assert set(minival_positions(1497, 100, 0)) <= set(minival)
    with pytest.raises(UserError, match="minival_size"):
        Pipeline(source, digits_config(32, minival_size=1480))


def test_best_checkpoint_is_minivals_choice_where_the_test_split_would_choose_another(
    tmp_path, data_dir, capsys, monkeypatch
):
    # Minival's top-1 is made to fall with every step (the real evaluation, its top-1 replaced),
    # so minival prefers the first evaluation, while the test split, which learning improves,
    # prefers a later one. The checkpoints, their ranking, the restore and re-evaluation of the
    # chosen one and results.json are the real code.
    from cnn_jax.train import loop

    real = loop.evaluate

    def falling_minival(run, state, *args, minival=False, **kwargs):
        result = real(run, state, *args, minival=minival, **kwargs)
        if minival:
            result["top1"] = 1.0 - int(jax.device_get(state.step)) / 1000
        return result

    monkeypatch.setattr(loop, "evaluate", falling_minival)
    wd = tmp_path / "run"
    code, _, err = run_cli(
        [
            "train",
            *LENET,
            "--config.model_kwargs.head=softmax",
            "--config.optimizer.name=adamw",
            "--config.optimizer.lr=0.003",
            "--config.num_train_steps=20",
            "--config.eval_every_steps=5",
            "--config.checkpoint_every_steps=20",
            "--config.keep_checkpoints=1",
            "--config.data.minival_size=150",
            "--config.report_checkpoint=best_minival",
            "--num-devices",
            "1",
            "--workdir",
            wd,
        ],
        capsys,
    )
    assert code == 0, err
    curves = {m["step"]: m for m in metrics(wd) if "val/top1" in m}
    assert sorted(curves) == [5, 10, 15, 20] and all("minival/top1" in m for m in curves.values())
    by_minival = max(curves, key=lambda s: (curves[s]["minival/top1"], s))
    by_test = max(curves, key=lambda s: (curves[s]["val/top1"], s))
    assert by_minival == 5 and curves[by_test]["val/top1"] > curves[5]["val/top1"], curves  # they disagree
    res = _results(wd)
    assert (res["reported_checkpoint"], res["reported_step"], res["best_step"]) == ("best_minival", 5, 5)
    assert res["selection"] == "best of 4 evaluations on minival (150 examples carved from train)"
    # The reported top-1 is the test accuracy of minival's choice, not the best test accuracy.
    assert res["top1"] == curves[5]["val/top1"] and res["top5"] == curves[5]["val/top5"]
    assert res["minival_top1"] == 1.0 - 5 / 1000 and res["minival_examples"] == 150
    assert _checkpoints(wd) == [5, 20]  # every evaluation was saved; the latest and the best are kept
    assert predictions.read(wd / "predictions_center.npz")["step"] == 5
    # `cnn-jax eval --step best` takes the same checkpoint.
    assert run_cli(["eval", "--workdir", wd, "--step", "best", "--num-devices", "1"], capsys)[0] == 0
    evaluated = json.loads((wd / "eval_center.json").read_text())
    assert (evaluated["step"], evaluated["top1"]) == (5, res["top1"])


def test_choices_without_minival_are_refused(tmp_path, root, capsys):
    code, _, err = run_cli(["train", *LENET, "--config.schedule.name=plateau", "--workdir", tmp_path / "a"], capsys)
    assert code == 2 and "--config.data.minival_size=N" in _error_line(err)
    code, _, err = run_cli(
        ["train", *LENET, "--config.report_checkpoint=best_minival", "--workdir", tmp_path / "b"], capsys
    )
    assert code == 2 and "data.minival_size" in _error_line(err)
    sweep = tmp_path / "lr.py"
    sweep.write_text(f'BASE = "{root}/configs/lenet5.py"\nSPACE = {{"optimizer.lr": [0.001, 0.01]}}\n')
    code, _, err = run_cli(["sweep", sweep, "--workdir", tmp_path / "s"], capsys)
    assert code == 2 and "data.minival_size" in _error_line(err)


@pytest.fixture(scope="module")
def run_without_minival(tmp_path_factory, data_dir):
    """LeNet-5 for 10 steps on the 8 test devices; eval batches of 32 pad the 300 test images."""
    wd = tmp_path_factory.mktemp("no_minival") / "run"
    code, _, err = run_cli(
        ["train", *LENET, "--config.num_train_steps=10", "--config.eval_every_steps=10", "--workdir", wd], None
    )
    assert code == 0, err
    return wd


def test_predictions_file_agrees_with_results_json(run_without_minival, data_dir, capsys):
    wd = run_without_minival
    res = _results(wd)
    assert res["predictions"] == {"center": "predictions_center.npz"}
    assert (res["reported_checkpoint"], res["reported_step"], res["selection"]) == (
        "final",
        10,
        "final checkpoint, no selection",
    )
    assert res["minival_top1"] is None and res["best_step"] is None
    path = wd / "predictions_center.npz"
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in zipfile.ZipFile(path).infolist())
    p = predictions.read(path)
    assert (p["index"].dtype, p["label"].dtype, p["top5"].dtype) == (np.int64, np.int64, np.int32)
    assert p["top5"].shape == (300, 5) and p["index"].tolist() == list(range(300)) and p["step"] == 10
    assert all(len(set(row)) == 5 for row in p["top5"].tolist())
    # Rows are the split in its stored order, and their top-1/top-5 are results.json's exactly.
    labels = np.concatenate(
        [b["label"][b["mask"] > 0] for b in Pipeline(open_source("digits"), digits_config()).eval_batches(64)]
    )
    assert p["label"].tolist() == labels.tolist()
    assert predictions.top1(p) == res["top1"]
    assert float(np.sum(np.any(p["top5"] == p["label"][:, None], axis=1))) / 300 == res["top5"]
    # `cnn-jax eval --protocol X` writes its own file, agreeing with its eval_X.json.
    assert run_cli(["eval", "--workdir", wd, "--protocol", "10crop"], capsys)[0] == 0
    ten = json.loads((wd / "eval_10crop.json").read_text())
    q = predictions.read(wd / ten["predictions"])
    assert ten["predictions"] == "predictions_10crop.npz" and ten["step"] == 10
    assert q["top5"].shape == (300, 5) and predictions.top1(q) == ten["top1"]


def test_eval_step_best_without_minival_says_what_to_do(run_without_minival, capsys):
    code, _, err = run_cli(["eval", "--workdir", run_without_minival, "--step", "best"], capsys)
    line = _error_line(err)
    assert code == 2 and "no checkpoint chosen on minival" in line and "--step latest" in line
    assert "--config.data.minival_size=N" in line


@pytest.mark.slow
def test_two_processes_write_the_single_process_predictions_once(tmp_path, data_dir, root):
    # Each process feeds its slice of every batch; the prediction step's outputs are gathered
    # onto every device, and process 0 alone writes the file.
    args = [*LENET, "--config.num_train_steps=10", "--config.eval_every_steps=10", "--config.data.minival_size=96"]
    single = train([*args, "--workdir", tmp_path / "single"], root, devices=2)
    port = free_port()
    procs = [train([*args, "--workdir", tmp_path / "multi", *distributed(i, port)], root) for i in range(2)]
    for p in [*procs, single]:
        finished(p, timeout=300)
    one, two = (predictions.read(tmp_path / d / "predictions_center.npz") for d in ("single", "multi"))
    assert set(one) == set(two) and all(np.array_equal(one[k], two[k]) for k in one)
    res = _results(tmp_path / "multi")
    assert res["processes"] == 2 and predictions.top1(two) == res["top1"]
    assert res["minival_top1"] == _results(tmp_path / "single")["minival_top1"]
    assert not list((tmp_path / "multi").glob("*.tmp"))
