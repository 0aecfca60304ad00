"""Plots: each figure is written (PNG or SVG by suffix), is a real picture, and shows exactly
the numbers it was given (the functions return what they plotted)."""

import json

import numpy as np
import pytest
from conftest import run_cli

from cnn_jax.errors import UserError
from cnn_jax.report import plots
from cnn_jax.report.table import table_row

RESULTS = [  # results.json-like records; MACs and params are the reference figures
    {"model": "lenet5", "dataset": "digits", "params": 60_000, "macs": 326_520, "top1": 0.9833, "top5": 1.0},
    {"model": "resnet20", "dataset": "digits", "params": 270_410, "macs": 40_551_040, "top1": 0.9567, "top5": 0.9967},
    {"model": "mobilenet_v1", "dataset": "digits", "params": 817_482, "macs": 10_012_160, "top1": 0.91, "top5": 0.99},
    {"model": "broken", "dataset": "digits", "status": "failed", "top1": None, "top5": None},
]


def _picture(path):
    """The PNG as an array, and how much of it is not background."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    ink = np.mean(np.any(image[..., :3] < 0.9, axis=-1))
    return image, ink


def test_accuracy_vs_macs_plots_each_finished_run(tmp_path):
    rows = [table_row(r, {"top1": 99.05} if r["model"] == "lenet5" else None) for r in RESULTS]
    points = plots.plot_accuracy_vs_macs(rows, tmp_path / "acc.png")
    # The failed run has no top-1: three points, each exactly its run's numbers.
    assert [(p["label"], p["macs"], p["params"]) for p in points] == [
        (r["model"], r["macs"], r["params"]) for r in RESULTS[:3]
    ]
    assert [p["top1"] for p in points] == pytest.approx([98.33, 95.67, 91.0])
    assert [p["published_top1"] for p in points] == [99.05, None, None]
    image, ink = _picture(tmp_path / "acc.png")
    assert image.shape[0] >= 400 and image.shape[1] >= 600
    assert 0.02 < ink < 0.5, ink  # axes, markers and labels, on a mostly white page
    # Marker area grows with parameters.
    areas = [plots._marker_area(p["params"], 817_482) for p in points]
    assert areas[0] < areas[1] < areas[2]
    # SVG by suffix: the labels are text in the file.
    plots.plot_accuracy_vs_macs(rows, tmp_path / "acc.svg")
    svg = (tmp_path / "acc.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "resnet20" in svg


def test_unknown_suffix_and_nothing_to_plot_are_user_errors(tmp_path):
    rows = [table_row(r) for r in RESULTS]
    with pytest.raises(UserError, match=r"\.png"):
        plots.plot_accuracy_vs_macs(rows, tmp_path / "acc.jpeg")
    with pytest.raises(UserError, match="No run"):
        plots.plot_accuracy_vs_macs([table_row(RESULTS[3])], tmp_path / "x.png")


def _write_metrics(workdir, records, model):
    workdir.mkdir(parents=True)
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (workdir / "results.json").write_text(json.dumps({"model": model}))


def test_learning_curves_read_metrics_and_keep_the_last_record_of_a_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "lenet5"
    _write_metrics(
        a,
        [
            {"step": 10, "train/loss": 2.0, "epoch": 0.5},
            {"step": 20, "train/loss": 1.5, "epoch": 1.0},
            {"step": 20, "val/top1": 0.5, "val/top5": 0.9, "epoch": 1.0},
            # resumed from step 10: steps 20 is logged again, the last record wins
            {"step": 20, "train/loss": 1.4, "epoch": 1.0},
            {"step": 20, "val/top1": 0.55, "epoch": 1.0},
            {"step": 40, "train/loss": 0.9, "epoch": 2.0},
            {"step": 40, "val/top1": 0.75, "epoch": 2.0},
        ],
        "resnet20",
    )
    _write_metrics(b, [{"step": 5, "train/loss": 2.3, "epoch": 0.25}], "lenet5")
    curves = plots.plot_learning_curves([a, b], tmp_path / "curves.png")
    assert curves == {
        "a (resnet20)": {
            "train_loss": [(0.5, 2.0), (1.0, 1.4), (2.0, 0.9)],
            "val_top1": [(1.0, pytest.approx(55.0)), (2.0, pytest.approx(75.0))],
        },
        "lenet5": {"train_loss": [(0.25, 2.3)], "val_top1": []},
    }
    image, ink = _picture(tmp_path / "curves.png")
    assert image.shape[1] > image.shape[0] and ink > 0.02  # two panels side by side


def test_plot_table_writes_both_figures(tmp_path):
    a = tmp_path / "lenet5"
    _write_metrics(
        a, [{"step": 10, "train/loss": 1.0, "epoch": 1.0}, {"step": 10, "val/top1": 0.9, "epoch": 1.0}], "lenet5"
    )
    written = plots.plot_table([table_row(RESULTS[0])], [a], tmp_path / "table.png")
    assert written == [tmp_path / "table.png", tmp_path / "table_curves.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


def test_sweep_plot_shows_completed_and_pruned_trials(tmp_path):
    trials = [
        {"state": "COMPLETE", "value": 97.0, "params": {"lr": 0.003, "opt": "sgd"}},
        {"state": "COMPLETE", "value": 90.0, "params": {"lr": 0.01, "opt": "adamw"}},
        {"state": "PRUNED", "value": 40.0, "params": {"lr": 0.0003, "opt": "sgd"}},
        {"state": "FAIL", "value": None, "params": {"lr": 0.1, "opt": "sgd"}},
    ]
    plotted = plots.plot_sweep(trials, {"lr": "log", "opt": "categorical"}, "top1 %", tmp_path / "sweep.png")
    assert plotted["lr"] == {"complete": [(0.003, 97.0), (0.01, 90.0)], "pruned": [(0.0003, 40.0)]}
    assert plotted["opt"] == {"complete": [("sgd", 97.0), ("adamw", 90.0)], "pruned": [("sgd", 40.0)]}
    assert _picture(tmp_path / "sweep.png")[1] > 0.02


def test_reproduce_draws_the_suite_next_to_its_published_numbers(tmp_path, data_dir, root, capsys):
    suite = tmp_path / "suite.py"
    suite.write_text(f"""ENTRIES = [{{"name": "lenet5", "config": "{root}/configs/lenet5.py",
        "overrides": {{"num_train_steps": 20, "progress_bar": False}}, "published": {{"top1": 99.05}}}},
        {{"name": "never", "config": "{root}/configs/lenet5.py", "overrides": {{"batch_size": 12}}}}]
""")
    code, out, err = run_cli(["reproduce", suite, "--workdir", tmp_path / "wd"], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "wd" / "lenet5" / "results.json").read_text())
    # The failed entry (batch 12 over 8 devices) has no top-1: one point, the run's, with the paper's.
    points = plots.accuracy_points([table_row(results, {"top1": 99.05}, "lenet5")])
    assert points == [
        {
            "label": "lenet5",
            "macs": 326_520,
            "params": 60_000,
            "top1": pytest.approx(100 * results["top1"]),
            "published_top1": 99.05,
        }
    ]
    assert _picture(tmp_path / "wd" / "table.png")[1] > 0.02
    assert _picture(tmp_path / "wd" / "table_curves.png")[1] > 0.02
