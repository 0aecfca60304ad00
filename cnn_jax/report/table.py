"""Comparison tables from run workdirs: each run's numbers (results.json for the centre crop,
eval_<protocol>.json for the other test protocols) side by side with the published ones, as
Markdown or CSV.

An entry trained over seeds (a directory of seed<k>/ workdirs) gives one row per seed and a
mean row (cnn_jax.report.seeds); Markdown shows the mean rows, CSV all of them. The Δ to a
paper is computed only where the paper evaluated alike (cnn_jax.report.published).
"""

import csv
import io
import json
import pathlib
import re

from cnn_jax.report.published import difference, from_reference, protocol_label
from cnn_jax.report.seeds import SINGLE_RUN_DECIMALS, format_mean_std, mean_row

SEED_DIR = re.compile(r"seed(\d+)$")


def _accuracy_cell(key: str):
    def cell(row: dict) -> str | None:
        return format_mean_std(
            row.get(f"{key}_pct"), row.get(f"{key}_std"), row.get(f"{key}_decimals", SINGLE_RUN_DECIMALS)
        )

    return cell


def _delta_cell(row: dict) -> str | None:
    if row.get("delta_note"):
        return row["delta_note"]
    if row.get("delta_top1") is None:
        return None
    text = f"{row['delta_top1']:+.{row.get('top1_decimals', SINGLE_RUN_DECIMALS)}f}"
    return text + " n.s." if row.get("delta_within_uncertainty") else text


COLUMNS = [  # (header, key, format): a format string for row[key], or a function of the whole row
    ("model", "model", "{}"),
    ("dataset", "dataset", "{}"),
    ("params", "params", "{:,}"),
    ("MACs", "macs", "{:,}"),
    ("eval", "eval_protocol", "{}"),
    ("n", "n", "{:d}"),
    ("top-1 %", "top1_pct", _accuracy_cell("top1")),
    ("top-5 %", "top5_pct", _accuracy_cell("top5")),
    ("paper top-1 %", "published_top1", "{:g}"),
    ("paper top-5 %", "published_top5", "{:g}"),
    ("paper eval", "published_protocol", "{}"),
    ("Δ top-1", "delta_top1", _delta_cell),
    ("epochs", "epochs", "{:.1f}"),
    ("train time", "wall_time_s", "{:.0f} s"),
    ("images/s", "images_per_s", "{:.1f}"),
    ("devices", "devices", "{}"),
    ("status", "status", "{}"),
]
CSV_KEYS = [
    "model",
    "seed",
    "n",
    "dataset",
    "params",
    "macs",
    "eval_protocol",
    "top1_pct",
    "top1_std",
    "top5_pct",
    "top5_std",
    "published_top1",
    "published_top5",
    "published_protocol",
    "delta_top1",
    "delta_note",
    "delta_within_uncertainty",
    "epochs",
    "wall_time_s",
    "images_per_s",
    "devices",
    "status",
]

FOOTNOTE_SEEDS = (
    "top-1/top-5 with n > 1: mean ± sample standard deviation over n seeds, rounded to the "
    "spread (the deviation's first significant digit, one decimal from 1 point up); n = 1: one run."
)
FOOTNOTE_DELTA = (
    "Δ top-1: our top-1 minus the paper's, only where both were evaluated alike (dataset, test "
    "protocol, input size, split, one model); otherwise the cell says what differs."
)
FOOTNOTE_NS = (
    "n.s.: the paper's number lies inside the 95% Student-t interval of our mean over seeds "
    "(mean ± t(0.975, n-1)·s/√n: a two-sided one-sample t-test at 5% does not reject it). Only our "
    "seed-to-seed spread is counted, not the paper's; rows with n = 1 are not tested."
)


def _read_json(path: pathlib.Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_results(workdir) -> dict | None:
    return _read_json(pathlib.Path(workdir) / "results.json")


def load_evaluation(workdir, protocol: str) -> dict | None:
    """A run's result with a test protocol: results.json for the centre crop (the training
    loop's own evaluation), eval_<protocol>.json (written by `cnn-jax eval`) for the others."""
    if protocol == "center":
        return load_results(workdir)
    return _read_json(pathlib.Path(workdir) / f"eval_{protocol}.json")


def run_split(workdir, results: dict) -> str | None:
    """The split the run was evaluated on, when it is recorded (None: the dataset's default)."""
    config = _read_json(pathlib.Path(workdir) / "config.json") or {}
    return results.get("eval_split") or config.get("eval_split") or None


def found_seed_runs(entry_dir) -> list:
    """[(seed, workdir)] of an entry directory's seed<k>/ subdirectories, by seed."""
    entry_dir = pathlib.Path(entry_dir)
    found = (
        [(int(m.group(1)), d) for d in entry_dir.iterdir() if d.is_dir() and (m := SEED_DIR.match(d.name))]
        if entry_dir.is_dir()
        else []
    )
    return sorted(found)


def table_row(
    results: dict,
    published: dict | None = None,
    name: str | None = None,
    protocol: str = "center",
    evaluation: dict | None = None,
    split: str | None = None,
    seed=None,
) -> dict:
    """One run's row with one test protocol: its numbers (accuracies in %) and the published
    ones it is compared with.

    `evaluation` holds the protocol's top1/top5 (default: `results`, the centre crop).
    Published numbers come from the suite entry, else from the reference table when the run
    was on ImageNet. `delta_top1` is set only when the paper evaluated alike; otherwise
    `delta_note` says what differs.
    """
    row = dict(results)
    row.update({"kind": "run", "seed": seed, "eval_protocol": protocol})
    if name:
        row["model"] = name if name == results.get("model") else f"{name} ({results.get('model')})"
    evaluation = results if protocol == "center" else evaluation
    if evaluation is None and results.get("status") == "completed":
        row["status"] = "not evaluated"
    for k in ("top1", "top5"):
        value = (evaluation or {}).get(k)
        row[f"{k}_pct"] = None if value is None else 100.0 * value
    row["n"] = 1 if row["top1_pct"] is not None else 0
    if published is None and results.get("dataset") == "imagenet2012":
        from cnn_jax.models.registry import reference_numbers  # flax: only for ImageNet runs outside a suite

        published = from_reference(reference_numbers().get(results.get("model"), {}))
    published = published or {}
    row["published_top1"], row["published_top5"] = published.get("top1"), published.get("top5")
    row["published_protocol"] = protocol_label(published)
    row["delta_top1"] = row["delta_note"] = row["delta_within_uncertainty"] = None
    if row["published_top1"] is not None:
        ours = {
            "dataset": results.get("dataset"),
            "protocol": protocol,
            "input_size": results.get("input_size"),
            "split": split,
        }
        row["delta_note"] = difference(published, ours)
        if row["delta_note"] is None and row["top1_pct"] is not None:
            row["delta_top1"] = row["top1_pct"] - row["published_top1"]
    return row


def _protocol_rows(name: str, runs: list, published, protocol: str) -> list:
    rows = []
    for seed, workdir in runs:
        results = load_results(workdir)
        if results is not None:
            rows.append(
                table_row(
                    results,
                    published,
                    name,
                    protocol,
                    load_evaluation(workdir, protocol),
                    run_split(workdir, results),
                    seed,
                )
            )
    return rows


def _without_results(runs: list) -> str:
    """An entry's status while none of its runs has results: "in progress" once a run has
    started (it writes config.json first; it may be training or stopped without results)."""
    started = any((pathlib.Path(workdir) / "config.json").exists() for _, workdir in runs)
    return "in progress" if started else "not run"


def entry_rows(name: str, runs: list, published: dict | None = None, protocols=()) -> list:
    """The rows of one suite entry: `runs` is [(seed, workdir)], with seed None for an entry
    trained once in its own directory. Per protocol (the centre crop, then `protocols`): the
    run's row, or with seeds a mean row followed by one row per seed (kind "seed")."""
    rows, status = [], _without_results(runs)
    for protocol in ["center", *[p for p in protocols if p != "center"]]:
        found = _protocol_rows(name, runs, published, protocol)
        if all(seed is None for seed, _ in runs):
            rows += found or [{"model": name, "kind": "run", "eval_protocol": protocol, "status": status}]
            continue
        for r in found:
            r["kind"] = "seed"
        rows.append(
            mean_row(found, len(runs))
            if found
            else {"model": name, "kind": "mean", "eval_protocol": protocol, "n": 0, "status": status}
        )
        rows += found
    return rows


def shown_rows(rows: list) -> list:
    """The rows a reader sees in Markdown and plots: single runs and the means of seeds."""
    return [r for r in rows if r.get("kind") != "seed"]


def _cell(row: dict, key: str, fmt) -> str:
    value = fmt(row) if callable(fmt) else row.get(key)
    if value is None or value == "":
        return "–"
    if callable(fmt):
        return str(value)
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def footnotes(rows: list) -> list:
    notes = []
    if any(r.get("kind") == "mean" for r in rows):
        notes.append(FOOTNOTE_SEEDS)
    if any(r.get("published_top1") is not None for r in rows):
        notes.append(FOOTNOTE_DELTA)
    if any(r.get("kind") == "mean" and r.get("delta_top1") is not None for r in rows):
        notes.append(FOOTNOTE_NS)
    return notes


def to_markdown(rows: list) -> str:
    rows = shown_rows(rows)
    lines = [
        "| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
        "|" + "|".join("---" if f == "{}" else "---:" for _, _, f in COLUMNS) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r, k, f) for _, k, f in COLUMNS) + " |")
    notes = footnotes(rows)
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def to_csv(rows: list) -> str:
    """Every row: single runs, each seed's run (with its seed) and the mean rows (seed "all")."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_KEYS)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r.get(k) for k in CSV_KEYS])
    return out.getvalue()


def rows_from_workdirs(workdirs) -> list:
    """Rows of run workdirs, and of entry directories holding seed<k>/ workdirs."""
    rows = []
    for d in map(pathlib.Path, workdirs):
        res = load_results(d)
        if res is not None:
            rows.append(table_row(res, split=run_split(d, res)))
        elif found_seed_runs(d):
            rows += entry_rows(d.name, found_seed_runs(d))
    return rows
