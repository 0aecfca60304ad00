"""`cnn-jax compare` and its statistics: a run against itself differs by exactly 0 with p = 1;
the paired bootstrap's 95% interval covers a known difference in simulated pairs; McNemar's
exact p matches a hand-computed binomial tail; runs on different labels are refused; two
real `digits` runs of different seeds compare end to end."""

import json
import math

import numpy as np
import pytest
from conftest import run_cli

from cnn_jax.report import stats
from cnn_jax.report.compare import compare, load_side


def _write_run(workdir, label, correct, index=None, protocol="center"):
    """A predictions file whose top-1 is right exactly where `correct` says (10 classes)."""
    label, correct = np.asarray(label, np.int64), np.asarray(correct, bool)
    first = np.where(correct, label, (label + 1) % 10)
    top5 = np.stack([first] + [(first + k) % 10 for k in range(1, 5)], axis=1).astype(np.int32)
    index = np.arange(len(label), dtype=np.int64) if index is None else np.asarray(index, np.int64)
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / f"predictions_{protocol}.npz", index=index, label=label, top5=top5, step=np.int64(10))
    return workdir


def _labels(n, seed=0):
    return np.random.default_rng(seed).integers(0, 10, n)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_a_run_compared_with_itself_differs_by_zero_with_p_one(tmp_path, capsys):
    labels = _labels(300)
    run = _write_run(tmp_path / "a", labels, np.random.default_rng(1).random(300) < 0.9)
    code, out, err = run_cli(["compare", run, run], capsys)
    assert code == 0, err
    result = _last_json(out)
    assert result["difference"] == 0.0 and result["examples_interval"] == [0.0, 0.0]
    assert result["sign_test"] == {"a_better": 0, "b_better": 0, "p": 1.0, "method": "exact", "mcnemar": True}
    assert result["examples"] == 300 and result["seeds"] is None
    assert "A - B: +0.00 points over 300 paired examples" in out
    # An entry directory of seeds compared with itself: zero and p = 1 too. Welch's interval
    # treats the two sides as independent groups of seeds, so it stays as wide as their spread,
    # centred on exactly 0.
    entry = tmp_path / "entry"
    for k in range(3):
        _write_run(entry / f"seed{k}", labels, np.random.default_rng(10 + k).random(300) < 0.9)
    same = compare(load_side(entry), load_side(entry))
    assert same["difference"] == 0.0 and same["examples_interval"] == [0.0, 0.0] and same["sign_test"]["p"] == 1.0
    low, high = same["seeds"]["interval"]
    assert same["seeds"]["difference"] == 0.0 and low == -high < 0


def test_the_paired_bootstrap_covers_a_known_difference(tmp_path):
    """200 simulated test sets of 1,000 examples whose two models agree on most examples (both
    right 84%, only A 6%, only B 3%, neither 7%: a true difference of +3 points); the 95%
    interval must cover +3 in at least 90% of them, and be narrow enough to mean something."""
    rng = np.random.default_rng(2024)
    outcome_p, true_difference = [0.84, 0.06, 0.03, 0.07], 0.03
    covered, widths = 0, []
    for draw in range(200):
        outcome = rng.choice(4, size=1000, p=outcome_p)
        differences = (outcome == 1).astype(float) - (outcome == 2)
        low, high = stats.paired_bootstrap_interval(differences, resamples=2000, seed=draw)
        covered += low <= true_difference <= high
        widths.append(high - low)
    assert covered >= 180, covered
    # The exact sd of the mean difference is sqrt((0.09 - 0.03^2) / 1000) = 0.0093: a 95% interval ~0.037 wide.
    assert 0.03 < float(np.mean(widths)) < 0.045


def test_mcnemar_exact_p_matches_the_binomial_tail_by_hand(tmp_path):
    # 30 examples: both right on 20, only A on 1, only B on 9 -> 10 discordant pairs, the
    # smaller side 1: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024.
    labels = _labels(30)
    a = np.array([True] * 20 + [True] * 1 + [False] * 9)
    b = np.array([True] * 20 + [False] * 1 + [True] * 9)
    result = compare(load_side(_write_run(tmp_path / "a", labels, a)), load_side(_write_run(tmp_path / "b", labels, b)))
    assert result["sign_test"]["p"] == 22 / 1024 and result["sign_test"]["method"] == "exact"
    assert (result["sign_test"]["a_better"], result["sign_test"]["b_better"]) == (1, 9)
    assert result["difference"] == pytest.approx(100 * (21 - 29) / 30)
    assert stats.sign_test(0, 6) == (2 / 64, "exact") and stats.sign_test(3, 3) == (1.0, "exact")
    assert stats.sign_test(0, 0) == (1.0, "exact")


def test_the_log_space_tail_agrees_with_the_exact_one(monkeypatch):
    exact, method = stats.sign_test(450, 550)
    assert method == "exact" and 0 < exact < 0.01
    monkeypatch.setattr(stats, "EXACT_SIGN_TEST_LIMIT", 10)
    approx, method = stats.sign_test(450, 550)
    assert method == "log-space" and approx == pytest.approx(exact, rel=1e-9)


def test_runs_on_other_labels_or_examples_are_refused(tmp_path, capsys):
    labels = _labels(50)
    correct = np.ones(50, bool)
    a = _write_run(tmp_path / "a", labels, correct)
    other_labels = labels.copy()
    other_labels[7] = (other_labels[7] + 1) % 10
    b = _write_run(tmp_path / "b", other_labels, correct)
    code, out, err = run_cli(["compare", a, b], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "different labels to 1 of the same examples" in errors[0]
    c = _write_run(tmp_path / "c", labels[:40], correct[:40])
    code, _, err = run_cli(["compare", a, c], capsys)
    assert code == 2 and "different examples (50 and 40)" in err
    code, _, err = run_cli(["compare", a, tmp_path / "missing"], capsys)
    assert code == 2 and "No predictions_center.npz" in err


def test_student_t_quantiles_match_the_printed_tables():
    printed = {1: 12.706, 2: 4.303, 4: 2.776, 10: 2.228, 30: 2.042}
    for df, t in printed.items():
        assert stats.student_t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert stats.student_t_quantile(0.975, math.inf) == pytest.approx(1.95996, abs=1e-5)
    assert stats.student_t_quantile(0.025, 3) == pytest.approx(-3.182, abs=5e-4)


def test_seeds_on_both_sides_add_a_welch_interval_and_use_the_sign_test(tmp_path):
    labels, rng = _labels(400), np.random.default_rng(3)
    for side, accuracy in (("a", 0.95), ("b", 0.85)):
        for k in range(3):
            _write_run(tmp_path / side / f"seed{k}", labels, rng.random(400) < accuracy)
    a, b = load_side(tmp_path / "a"), load_side(tmp_path / "b")
    result = compare(a, b)
    per_seed = np.mean(a.top1_per_run()) - np.mean(b.top1_per_run())
    assert result["difference"] == pytest.approx(per_seed)  # the mean of per-example scores is the mean top-1
    seeds = result["seeds"]
    assert seeds["difference"] == pytest.approx(per_seed) and seeds["interval"][0] < per_seed < seeds["interval"][1]
    assert seeds["df"] > 1 and not result["sign_test"]["mcnemar"] and result["sign_test"]["p"] < 1e-6
    assert result["a"]["runs"] == ["seed0", "seed1", "seed2"]


def _train(tmp_path, name, seed):
    workdir = tmp_path / name
    code, _, _ = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py",
            "--workdir",
            workdir,
            f"--config.seed={seed}",
            "--config.num_train_steps=10",
            "--config.eval_every_steps=10",
            "--config.progress_bar=False",
            "--config.data.cache=False",
        ]
    )
    assert code == 0
    return workdir


def test_compare_two_digits_runs_of_different_seeds(tmp_path, data_dir, root, capsys, monkeypatch):
    monkeypatch.chdir(root)
    a, b = _train(tmp_path, "seed0", 0), _train(tmp_path, "seed1", 1)
    code, out, err = run_cli(["compare", a, b], capsys)
    assert code == 0, err
    result = _last_json(out)
    reported = [100 * json.loads((d / "results.json").read_text())["top1"] for d in (a, b)]
    assert [result["a"]["top1"], result["b"]["top1"]] == pytest.approx(reported)
    assert result["examples"] == json.loads((a / "results.json").read_text())["eval_examples"]
    assert result["difference"] == pytest.approx(reported[0] - reported[1])
    low, high = result["examples_interval"]
    assert low <= result["difference"] <= high and 0.0 < result["sign_test"]["p"] <= 1.0
