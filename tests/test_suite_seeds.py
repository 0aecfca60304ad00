"""Suites over seeds and like-for-like deltas: seed k trains with --config.seed=k into
NAME/seed<k>/; the table shows mean ± sample std rounded to the spread with n, marks a Δ
within the seed uncertainty, and sets a result against a published number only when both
were evaluated alike; the CSV keeps every seed. End to end: `cnn-jax reproduce SUITE --seeds 2`
on a two-entry `digits` suite."""

import csv
import io
import json
import pathlib

import pytest
from conftest import run_cli

from cnn_jax.errors import UserError
from cnn_jax.models.registry import reference_numbers
from cnn_jax.report import published as pub
from cnn_jax.report.seeds import decimals_for, format_mean_std
from cnn_jax.report.table import entry_rows, table_row, to_csv, to_markdown
from cnn_jax.train.seeds import seed_argv, seed_runs
from cnn_jax.train.suite import entry_seed_runs, load_suite

SUITES = ["digits", "cifar10_resnet", "imagenet_classic", "seed_table", "fashion_mnist"]


def _results(top1, model="lenet5", dataset="digits", top5=0.99, size=32):
    return {
        "model": model,
        "dataset": dataset,
        "params": 60_000,
        "macs": 326_520,
        "top1": top1,
        "top5": top5,
        "status": "completed",
        "epochs": 20.0,
        "wall_time_s": 40.0,
        "images_per_s": 300.0,
        "devices": 1,
        "steps": 100,
        "input_size": size,
    }


def _write_seeds(entry_dir: pathlib.Path, top1s, **kwargs) -> list:
    runs = []
    for k, top1 in enumerate(top1s):
        (entry_dir / f"seed{k}").mkdir(parents=True)
        (entry_dir / f"seed{k}" / "results.json").write_text(json.dumps(_results(top1, **kwargs)))
        runs.append((k, entry_dir / f"seed{k}"))
    return runs


def _markdown_row(markdown: str, name: str, protocol: str = "center") -> list:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].split(" (")[0] == name and cells[4] == protocol:
            return cells
    raise AssertionError(f"no row {name}/{protocol} in\n{markdown}")


def test_decimals_follow_the_spread():
    assert [decimals_for(s) for s in (0.8, 0.15, 0.1, 0.04, 0.004, 0.0001, 1.7, 12.0)] == [1, 1, 1, 2, 3, 3, 1, 1]
    assert decimals_for(None) == decimals_for(0.0) == decimals_for(1e-14) == 2  # one run, or equal seeds
    assert format_mean_std(98.333, 0.88, 1) == "98.3 ± 0.9" and format_mean_std(97.67, None, 2) == "97.67"


def test_seed_rows_give_mean_std_n_and_mark_a_delta_within_the_uncertainty(tmp_path):
    # Three seeds as make run's ResNet-20 spreads them: 97.67, 99.33, 98.00 -> 98.33 ± 0.88.
    runs = _write_seeds(tmp_path / "r20", [0.9767, 0.9933, 0.98])
    near = {"top1": 98.9, "protocol": "center", "dataset": "digits"}  # inside mean ± t(0.975,2)·s/√3 = ±2.18
    far = {"top1": 91.0, "protocol": "center", "dataset": "digits"}
    rows_near, rows_far = entry_rows("r20", runs, near), entry_rows("r20", runs, far)
    mean = rows_near[0]
    assert (mean["kind"], mean["n"], mean["seed"]) == ("mean", 3, "all")
    assert mean["top1_pct"] == pytest.approx(98.3333, abs=1e-4) and mean["top1_std"] == pytest.approx(0.8787, abs=1e-4)
    assert [r["seed"] for r in rows_near[1:]] == [0, 1, 2] and {r["kind"] for r in rows_near[1:]} == {"seed"}
    md_near, md_far = to_markdown(rows_near), to_markdown(rows_far)
    cells = _markdown_row(md_near, "r20")
    assert cells[5:8] == ["3", "98.3 ± 0.9", "99.00 ± 0.00"] and cells[11] == "-0.6 n.s."
    assert _markdown_row(md_far, "r20")[11] == "+7.3"
    assert "95% Student-t interval" in md_near and "n.s." in md_near
    assert md_near.count("| r20 ") == 1  # Markdown shows the mean row, not the seeds
    # CSV: the three seeds and the mean, each with its seed.
    rows = list(csv.DictReader(io.StringIO(to_csv(rows_near))))
    assert [(r["seed"], r["n"]) for r in rows] == [("all", "3"), ("0", "1"), ("1", "1"), ("2", "1")]
    assert float(rows[1]["top1_pct"]) == pytest.approx(97.67) and rows[0]["delta_within_uncertainty"] == "True"
    # One run: its number as measured, no ± and no test.
    single = to_markdown([table_row(_results(0.9767), near, "r20")])
    assert _markdown_row(single, "r20")[5:8] == ["1", "97.67", "99.00"] and _markdown_row(single, "r20")[11] == "-1.23"
    assert "n.s." not in single


def test_a_delta_is_computed_only_like_for_like(tmp_path):
    run = {"dataset": "imagenet2012", "protocol": "center", "input_size": 224, "split": None}
    base = {"top1": 75.0, "dataset": "imagenet2012", "protocol": "center", "input_size": 224, "split": "validation"}
    assert pub.difference(base, run) is None
    cases = {
        "dataset": ("mnist", "other dataset (mnist)"),
        "protocol": ("10crop", "paper: 10-crop"),
        "input_size": (299, "paper: 299 px"),
        "split": ("48,238 non-blacklisted", "paper: 48,238 non-blacklisted"),
        "models": (7, "paper: 7 models"),
        "selection": ("best of 5 runs", "paper: best of 5 runs"),
    }
    for key, (value, said) in cases.items():
        assert pub.difference({**base, key: value}, run) == said, key
    assert pub.difference({**base, "protocol": "dense"}, run) == "paper: dense"
    assert pub.difference({"top1": 75.0}, run) == "paper: protocol not stated"  # no protocol: no Δ
    assert pub.difference({**base, "split": "test"}, {**run, "split": "validation"}) == "paper: test split"
    with pytest.raises(UserError, match="12crop"):
        pub.normalise({"top1": 1.0, "protocol": "12crop"})
    # A run evaluated both ways: the centre-crop row names the paper's protocol, the 10-crop row has the Δ.
    runs = _write_seeds(tmp_path / "resnet50", [0.751, 0.753], model="resnet50", dataset="imagenet2012", size=224)
    for k, top1 in enumerate([0.771, 0.774]):
        (tmp_path / "resnet50" / f"seed{k}" / "eval_10crop.json").write_text(json.dumps({"top1": top1, "top5": 0.93}))
    rows = entry_rows("resnet50", runs, {**base, "top1": 77.15, "protocol": "10crop"}, ["10crop"])
    markdown = to_markdown(rows)
    assert _markdown_row(markdown, "resnet50", "center")[11] == "paper: 10-crop"
    assert _markdown_row(markdown, "resnet50", "10crop")[6:8] == ["77.2 ± 0.2", "93.00 ± 0.00"]
    assert _markdown_row(markdown, "resnet50", "10crop")[11] == "+0.1 n.s."
    # Not yet evaluated with the paper's protocol: no number, the row says so.
    (tmp_path / "resnet50" / "seed1" / "eval_10crop.json").unlink()
    rows = entry_rows("resnet50", runs, {**base, "top1": 77.15, "protocol": "10crop"}, ["10crop"])
    assert [r["status"] for r in rows if r["eval_protocol"] == "10crop"] == [
        "1/2 seeds completed",
        "completed",
        "not evaluated",
    ]


@pytest.mark.parametrize("suite", SUITES)
def test_every_published_number_in_the_suites_names_its_protocol(root, suite):
    for entry in load_suite(root / "experiments" / f"{suite}.py"):
        published = entry.get("published")
        if published:
            assert published.get("protocol") in pub.PROTOCOL_LABELS, (suite, entry["name"])
            assert published.get("dataset"), (suite, entry["name"])
        for protocol in entry.get("protocols", ()):  # a paper's protocol the suite evaluates is the one it states
            assert protocol == published["protocol"]
    digits = {e["name"]: e for e in load_suite(root / "experiments" / "digits.py")}
    row = table_row(_results(0.98), digits["lenet5"]["published"], "lenet5")
    assert (row["delta_top1"], row["delta_note"]) == (None, "other dataset (mnist)")


def test_reference_protocols_are_read_from_the_papers_text():
    ref = reference_numbers()
    protocol = {
        name: pub.from_reference(ref[name])["protocol"]
        for name in (
            "alexnet",
            "vgg16",
            "resnet50",
            "densenet121",
            "googlenet",
            "zfnet",
            "mobilenet_v1",
            "inception_v3",
        )
    }
    assert protocol == {
        "alexnet": "10crop",
        "vgg16": "dense",
        "resnet50": "10crop",
        "densenet121": "center",
        "googlenet": "center",
        "zfnet": "unstated",
        "mobilenet_v1": "unstated",
        "inception_v3": "center",
    }
    # Inception-v3's number is on the non-blacklisted subset: a full-validation run gets no Δ.
    row = table_row(_results(0.78, model="inception_v3", dataset="imagenet2012", size=299))
    assert row["delta_top1"] is None and row["delta_note"] == "paper: non-blacklisted validation subset"


def test_seed_layout_and_flags(tmp_path):
    entry = {"name": "lenet5", "config": "configs/lenet5.py", "seeds": 3}
    assert entry_seed_runs(entry, tmp_path) == [(k, tmp_path / "lenet5" / f"seed{k}") for k in range(3)]
    assert entry_seed_runs(entry, tmp_path, seeds=2) == [
        (0, tmp_path / "lenet5" / "seed0"),
        (1, tmp_path / "lenet5" / "seed1"),
    ]
    assert entry_seed_runs(entry, tmp_path, seeds=1) == [(None, tmp_path / "lenet5")]  # one seed: the old layout
    assert entry_seed_runs({"name": "lenet5"}, tmp_path) == [(None, tmp_path / "lenet5")]
    assert seed_argv(["--config=c.py"], 2) == ["--config=c.py", "--config.seed=2"]
    assert seed_argv(["--config=c.py"], None) == ["--config=c.py"] and seed_runs(tmp_path, None) == [(None, tmp_path)]
    bad = tmp_path / "bad.py"
    bad.write_text('ENTRIES = [{"name": "a", "config": "configs/lenet5.py", "seeds": 0}]\n')
    with pytest.raises(UserError, match="seeds must be a whole number"):
        load_suite(bad)


def test_reproduce_over_seeds_prints_mean_std_and_sets_like_against_like(tmp_path, data_dir, root, capsys):
    overrides = {"num_train_steps": 10, "eval_every_steps": 10, "progress_bar": False, "data.cache": False}
    suite = tmp_path / "suite.py"
    suite.write_text(f"""ENTRIES = [
    {{"name": "mnist_scale", "config": "{root}/configs/lenet5.py", "overrides": {overrides!r},
      "published": {{"top1": 99.05, "protocol": "center", "dataset": "mnist", "source": "LeNet-5 on MNIST"}}}},
    {{"name": "tencrop", "config": "{root}/configs/lenet5.py", "overrides": {overrides!r}, "protocols": ["10crop"],
      "published": {{"top1": 50.0, "protocol": "10crop", "dataset": "digits", "source": "a 10-crop number"}}}},
]
""")
    wd = tmp_path / "wd"
    code, out, err = run_cli(["reproduce", suite, "--workdir", wd, "--seeds", "2"], capsys)
    assert code == 0, err
    for name in ("mnist_scale", "tencrop"):
        for k in range(2):
            run = wd / name / f"seed{k}"
            assert json.loads((run / "results.json").read_text())["status"] == "completed"
            assert json.loads((run / "config.json").read_text())["seed"] == k
        assert not (wd / name / "results.json").exists()
    for k in range(2):
        assert json.loads((wd / "tencrop" / f"seed{k}" / "eval_10crop.json").read_text())["protocol"] == "10crop"
    markdown = (wd / "table.md").read_text()
    assert markdown in out
    scale, center, tencrop = (
        _markdown_row(markdown, "mnist_scale"),
        _markdown_row(markdown, "tencrop"),
        _markdown_row(markdown, "tencrop", "10crop"),
    )
    for cells in (scale, center, tencrop):
        assert cells[5] == "2" and ("±" in cells[6])
    assert scale[11] == "other dataset (mnist)" and center[11] == "paper: 10-crop"
    ten = [100 * json.loads((wd / "tencrop" / f"seed{k}" / "eval_10crop.json").read_text())["top1"] for k in range(2)]
    delta = float(tencrop[11].split()[0])
    assert delta == pytest.approx(sum(ten) / 2 - 50.0, abs=0.06)  # the 10-crop mean against the 10-crop number
    rows = list(csv.DictReader((wd / "table.csv").open()))
    assert [(r["model"].split(" (")[0], r["eval_protocol"], r["seed"]) for r in rows] == [
        ("mnist_scale", "center", "all"),
        ("mnist_scale", "center", "0"),
        ("mnist_scale", "center", "1"),
        ("tencrop", "center", "all"),
        ("tencrop", "center", "0"),
        ("tencrop", "center", "1"),
        ("tencrop", "10crop", "all"),
        ("tencrop", "10crop", "0"),
        ("tencrop", "10crop", "1"),
    ]
    # The same command again trains and evaluates nothing: every file is as it was.
    stamps = {p: p.stat().st_mtime_ns for p in wd.glob("*/seed*/*.json")}
    code, out2, _ = run_cli(["reproduce", suite, "--workdir", wd, "--seeds", "2"], capsys)
    assert code == 0 and {p: p.stat().st_mtime_ns for p in wd.glob("*/seed*/*.json")} == stamps
    assert (wd / "table.md").read_text() == markdown


def test_a_sweep_confirms_its_best_trial_over_seeds(tmp_path, data_dir, root, capsys):
    overrides = {
        "num_train_steps": 10,
        "eval_every_steps": 10,
        "progress_bar": False,
        "data.cache": False,
        "data.minival_size": 64,
    }
    sweep = tmp_path / "s.py"
    sweep.write_text(
        f'BASE = "{root}/configs/lenet5.py"\nOVERRIDES = {overrides!r}\n'
        'SPACE = {"optimizer.lr": [0.003]}\nTRIALS = 1\nSAMPLER = "grid"\n'
    )
    wd = tmp_path / "sweep"
    code, out, err = run_cli(["sweep", sweep, "--workdir", wd, "--confirm-seeds", "2"], capsys)
    assert code == 0, err
    summary = json.loads((wd / "confirm.json").read_text())
    assert (summary["trial"], summary["params"], summary["seeds"]) == ("trial_0000", {"optimizer.lr": 0.003}, [0, 1])
    for k in range(2):
        run = wd / "confirm_trial_0000" / f"seed{k}"
        config = json.loads((run / "config.json").read_text())
        assert (config["seed"], config["optimizer"]["lr"]) == (k, 0.003)
        assert summary["values"][k] == pytest.approx(100 * json.loads((run / "results.json").read_text())["top1"])
    assert summary["mean"] == pytest.approx(sum(summary["values"]) / 2)
    assert "trial_0000 ({'optimizer.lr': 0.003}) over 2 seeds: top1" in out and "on the reported split" in out


def test_an_entry_without_results_says_whether_a_run_has_started(tmp_path):
    # A run writes config.json when it starts and results.json when it ends.
    single, seeds = tmp_path / "lenet5", tmp_path / "r20"
    runs_single, runs_seeds = [(None, single)], [(k, seeds / f"seed{k}") for k in range(3)]
    assert entry_rows("lenet5", runs_single)[0]["status"] == "not run"
    assert entry_rows("r20", runs_seeds)[0]["status"] == "not run"
    for workdir in (single, seeds / "seed0"):
        workdir.mkdir(parents=True)
        (workdir / "config.json").write_text("{}")
    assert entry_rows("lenet5", runs_single)[0]["status"] == "in progress"
    mean = entry_rows("r20", runs_seeds)[0]
    assert (mean["kind"], mean["n"], mean["status"]) == ("mean", 0, "in progress")
    assert _markdown_row(to_markdown(entry_rows("r20", runs_seeds)), "r20")[-1] == "in progress"
