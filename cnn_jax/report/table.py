"""Comparison tables from run workdirs: the numbers of each run's results.json, side by
side with the published ones, as Markdown or CSV."""

import csv
import io
import json
import pathlib

from cnn_jax.models.registry import reference_numbers

COLUMNS = [  # (header, key, format)
    ("model", "model", "{}"), ("dataset", "dataset", "{}"), ("params", "params", "{:,}"),
    ("MACs", "macs", "{:,}"), ("top-1 %", "top1_pct", "{:.2f}"), ("top-5 %", "top5_pct", "{:.2f}"),
    ("paper top-1 %", "published_top1", "{:.2f}"), ("paper top-5 %", "published_top5", "{:.2f}"),
    ("Δ top-1", "delta_top1", "{:+.2f}"), ("epochs", "epochs", "{:.1f}"), ("train time", "wall_time_s", "{:.0f} s"),
    ("images/s", "images_per_s", "{:.1f}"), ("devices", "devices", "{}"), ("eval", "eval_protocol", "{}"),
    ("status", "status", "{}"),
]


def load_results(workdir) -> dict | None:
    path = pathlib.Path(workdir) / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def table_row(results: dict, published: dict | None = None, name: str | None = None) -> dict:
    """One row: the run's numbers (accuracies in %) and the published ones it is compared with.

    Published numbers come from the suite entry, else from the reference table when the
    run was on the paper's dataset.
    """
    row = dict(results)
    if name:
        row["model"] = name if name == results.get("model") else f"{name} ({results.get('model')})"
    for k in ("top1", "top5"):
        row[f"{k}_pct"] = None if results.get(k) is None else 100.0 * results[k]
    if published is None and results.get("dataset") == "imagenet2012":
        ref = reference_numbers().get(results.get("model"), {})
        published = {"top1": ref.get("paper_top1"), "top5": ref.get("paper_top5")}
    published = published or {}
    row["published_top1"], row["published_top5"] = published.get("top1"), published.get("top5")
    if row["published_top1"] is not None and row["top1_pct"] is not None:
        row["delta_top1"] = row["top1_pct"] - row["published_top1"]
    return row


def _cell(value, fmt: str) -> str:
    if value is None or value == "":
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def to_markdown(rows: list) -> str:
    lines = ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
             "|" + "|".join("---:" if f != "{}" else "---" for _, _, f in COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), f) for _, k, f in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([k for _, k, _ in COLUMNS])
    for r in rows:
        w.writerow(["" if r.get(k) is None else r.get(k) for _, k, _ in COLUMNS])
    return out.getvalue()


def rows_from_workdirs(workdirs) -> list:
    rows = []
    for d in workdirs:
        res = load_results(d)
        if res is not None:
            rows.append(table_row(res))
    return rows
