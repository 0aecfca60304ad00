"""Two runs (or two sets of seeds) compared example by example on the same test images.

Each run's evaluation leaves `predictions_<protocol>.npz` in its workdir: `index` (int64,
which test example), `label` (int64) and `top5` (int32, (N, 5), best class first). A side
of the comparison is one workdir, or an entry directory whose seed<k>/ workdirs are its
seeds. Examples are paired by `index`.

Per example, a side's score is the fraction of its seeds that got it right (0 or 1 for a
single run), and the difference of the two scores is what is resampled:

* over test examples, a paired bootstrap of the mean difference: its interval is the
  uncertainty from which images happen to be in the test set, for these trained networks;
* the exact sign test on the examples where one side scores higher (McNemar's exact test
  when each side is one run);
* over seeds (two or more a side), Welch's t interval of the difference of the mean top-1:
  the uncertainty from training randomness, which the per-example figures do not see.
"""

import dataclasses
import math
import pathlib

import numpy as np

from cnn_jax.errors import UserError
from cnn_jax.report.stats import mean_and_std, paired_bootstrap_interval, sign_test, welch_interval
from cnn_jax.report.table import found_seed_runs

LEVEL = 0.95


@dataclasses.dataclass
class Side:
    """One side of a comparison: its runs' per-example correctness, sorted by example index."""

    path: str
    runs: list  # the workdirs' names, one per run
    index: np.ndarray  # (N,) example indices, ascending
    label: np.ndarray  # (N,)
    correct: np.ndarray  # (runs, N) bool: top-1 right
    correct5: np.ndarray  # (runs, N) bool: label among the top 5

    def top1_per_run(self) -> list:
        return [100.0 * float(c.mean()) for c in self.correct]

    def top5_per_run(self) -> list:
        return [100.0 * float(c.mean()) for c in self.correct5]


def prediction_files(path, protocol: str) -> list:
    """The predictions file of a workdir, or those of an entry directory's seed<k>/ workdirs."""
    path, name = pathlib.Path(path), f"predictions_{protocol}.npz"
    if (path / name).is_file():
        return [path / name]
    files = [d / name for _, d in found_seed_runs(path) if (d / name).is_file()]
    if not files:
        raise UserError(
            f"No {name} in {path} or its seed<k>/ directories; pass the workdir of a run evaluated "
            f"with the {protocol!r} protocol (or an entry directory of such runs)."
        )
    return files


def read_predictions(file: pathlib.Path) -> tuple:
    """(index, label, top5) of one predictions file, sorted by index."""
    try:
        with np.load(file) as data:
            index, label, top5 = (np.asarray(data[k]) for k in ("index", "label", "top5"))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"{file} is not a predictions file with index, label and top5 arrays ({e}); "
            "evaluate the run again to rewrite it."
        ) from None
    if top5.ndim != 2 or not len(index) == len(label) == len(top5):
        raise UserError(f"{file} holds arrays of mismatched shapes; evaluate the run again to rewrite it.")
    if len(np.unique(index)) != len(index):
        raise UserError(f"{file} lists an example index twice; evaluate the run again to rewrite it.")
    order = np.argsort(index, kind="stable")
    return index[order], label[order], top5[order]


def _same_examples(a: tuple, b: tuple) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def load_side(path, protocol: str = "center") -> Side:
    files = prediction_files(path, protocol)
    read = [read_predictions(f) for f in files]
    for f, r in zip(files[1:], read[1:], strict=True):
        if not _same_examples(read[0], r):
            raise UserError(
                f"{f.parent} was evaluated on other examples or labels than {files[0].parent}; "
                "pass seeds of one dataset split."
            )
    index, label = read[0][0], read[0][1]
    correct = np.stack([top5[:, 0] == label for _, _, top5 in read])
    correct5 = np.stack([np.any(top5 == label[:, None], axis=1) for _, _, top5 in read])
    return Side(str(path), [f.parent.name for f in files], index, label, correct, correct5)


def check_paired(a: Side, b: Side) -> None:
    if not np.array_equal(a.index, b.index):
        raise UserError(
            f"{a.path} and {b.path} were evaluated on different examples ({len(a.index)} and "
            f"{len(b.index)}); compare runs evaluated on the same dataset split."
        )
    if not np.array_equal(a.label, b.label):
        raise UserError(
            f"{a.path} and {b.path} give different labels to {int((a.label != b.label).sum())} "
            "of the same examples; compare runs of the same dataset."
        )


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _summary(side: Side) -> dict:
    (top1, top1_std), (top5, top5_std) = mean_and_std(side.top1_per_run()), mean_and_std(side.top5_per_run())
    return {
        "path": side.path,
        "runs": side.runs,
        "top1": top1,
        "top1_std": top1_std,
        "top5": top5,
        "top5_std": top5_std,
        "top1_per_run": side.top1_per_run(),
    }


def compare(a: Side, b: Side, resamples: int = 10_000, seed: int = 0) -> dict:
    """A − B in top-1 points, with its uncertainty over test examples and, given two or more
    seeds a side, over seeds. The bootstrap uses a fixed `seed`, so the same runs always
    give the same interval."""
    check_paired(a, b)
    score_a, score_b = a.correct.mean(axis=0), b.correct.mean(axis=0)
    differences = score_a - score_b  # per example; its mean is the difference of the mean top-1
    low, high = paired_bootstrap_interval(differences, resamples, seed, LEVEL)
    wins_a, wins_b = int((differences > 0).sum()), int((differences < 0).sum())
    p, method = sign_test(wins_a, wins_b)
    result = {
        "a": _summary(a),
        "b": _summary(b),
        "examples": int(len(a.index)),
        "difference": 100.0 * float(differences.mean()),
        "level": LEVEL,
        "examples_interval": [100.0 * low, 100.0 * high],
        "bootstrap_resamples": int(resamples),
        "bootstrap_seed": int(seed),
        "sign_test": {
            "a_better": wins_a,
            "b_better": wins_b,
            "p": p,
            "method": method,
            "mcnemar": len(a.runs) == len(b.runs) == 1,
        },
        "seeds": None,
    }
    welch = welch_interval(a.top1_per_run(), b.top1_per_run(), LEVEL)
    if welch is not None:
        diff, lo, hi, df = welch
        result["seeds"] = {"difference": diff, "interval": [lo, hi], "df": _finite(df), "test": "Welch t"}
    return result


def _runs_text(side: dict) -> str:
    return "one run" if len(side["runs"]) == 1 else f"{len(side['runs'])} seeds: {', '.join(side['runs'])}"


def _accuracy_text(side: dict) -> str:
    if side["top1_std"] is None:
        return f"{side['top1']:.2f}%"
    return f"{side['top1']:.2f}% ± {side['top1_std']:.2f} (mean ± sd)"


def describe(result: dict, protocol: str) -> list:
    """The comparison as lines for a reader (the JSON line carries the same numbers)."""
    a, b, pct = result["a"], result["b"], int(round(100 * result["level"]))
    lo, hi = result["examples_interval"]
    s = result["sign_test"]
    test = "McNemar's exact test" if s["mcnemar"] else "exact sign test on per-example seed-averaged scores"
    lines = [
        f"A: {a['path']} ({_runs_text(a)}): top-1 {_accuracy_text(a)}",
        f"B: {b['path']} ({_runs_text(b)}): top-1 {_accuracy_text(b)}",
        f"A - B: {result['difference']:+.2f} points over {result['examples']} paired examples ({protocol})",
        f"  test examples: {pct}% CI [{lo:+.2f}, {hi:+.2f}] (paired bootstrap, "
        f"{result['bootstrap_resamples']:,} resamples, seed {result['bootstrap_seed']})",
        f"  {test}: A better on {s['a_better']}, B better on {s['b_better']} examples, "
        f"p = {s['p']:.4g}{'' if s['method'] == 'exact' else ' (summed in log space: too many for exact sums)'}",
    ]
    if result["seeds"]:
        w = result["seeds"]
        df = "inf" if w["df"] is None else f"{w['df']:.1f}"
        lines.append(f"  seeds: {pct}% CI [{w['interval'][0]:+.2f}, {w['interval'][1]:+.2f}] (Welch t, df {df})")
    else:
        lines.append("  seeds: no interval (it needs two or more seeds on each side)")
    return lines
