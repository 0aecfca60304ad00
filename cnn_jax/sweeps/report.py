"""A sweep's result: one row per trial sorted by the objective, as Markdown, CSV and a plot.

The rows come from the study (values and user attributes), not from the workdirs, so the
report can be written on any machine that reaches the storage.
"""

import csv
import io

from optuna.trial import TrialState

from cnn_jax.sweeps.runner import replaced_numbers, trial_origin
from cnn_jax.sweeps.spec import Sweep, axis_kind

STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}


def _value(t):
    """The objective of a finished trial; a pruned one shows the last value it reported."""
    if t.state == TrialState.COMPLETE:
        return t.value
    if t.state == TrialState.PRUNED and t.intermediate_values:
        return t.intermediate_values[max(t.intermediate_values)]
    return None


def trial_rows(trials, sweep: Sweep) -> list:
    """The trials of the sweep, best first: completed by objective, then pruned, running, failed.

    Surplus trials (a worker's race for the last slot) and re-queued trials (their
    continuation has the row) are left out.
    """
    replaced = replaced_numbers(trials)
    rows = []
    for t in trials:
        if t.user_attrs.get("surplus") or t.number in replaced:
            continue
        a = t.user_attrs
        rows.append(
            {
                "trial": a.get("workdir", f"trial_{trial_origin(t):04d}"),
                "number": t.number,
                "state": t.state.name,
                "value": _value(t),
                "params": dict(t.params),
                "top1": a.get("top1"),
                "top5": a.get("top5"),
                "steps": a.get("steps"),
                "wall_time_s": a.get("wall_time_s"),
                "error": a.get("error", ""),
            }
        )
    sign = -1.0 if sweep.direction == "maximize" else 1.0
    rows.sort(
        key=lambda r: (
            STATE_ORDER.get(r["state"], 5),
            sign * r["value"] if r["value"] is not None else 0.0,
            r["number"],
        )
    )
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return rows


def _pct(x) -> str:
    return "" if x is None else f"{100.0 * x:.2f}"


def _param(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _cells(r: dict, names: list) -> list:
    return (
        [str(r["rank"]), r["trial"], r["state"], _pct(r["value"])]
        + [_param(r["params"].get(n, "")) for n in names]
        + [
            _pct(r["top1"]),
            _pct(r["top5"]),
            "" if r["steps"] is None else str(r["steps"]),
            "" if r["wall_time_s"] is None else f"{r['wall_time_s']:.0f}",
            r["error"].replace("|", "/"),
        ]
    )


def _headers(sweep: Sweep) -> list:
    return [
        "rank",
        "trial",
        "state",
        f"minival {sweep.objective} %",
        *sweep.space,
        "top1 %",
        "top5 %",
        "steps",
        "train time s",
        "error",
    ]


def to_markdown(rows: list, sweep: Sweep) -> str:
    heads = _headers(sweep)
    lines = [
        f"Sweep `{sweep.name}`: {sweep.base} over {', '.join(sweep.space)} "
        f"({sweep.sampler}, {sweep.direction} minival {sweep.objective}; top1 and top5 on the reported split)",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join("---" for _ in heads) + "|",
    ]
    lines += ["| " + " | ".join(c or "–" for c in _cells(r, list(sweep.space))) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list, sweep: Sweep) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "rank",
            "trial",
            "state",
            f"minival_{sweep.objective}",
            *sweep.space,
            "top1",
            "top5",
            "steps",
            "wall_time_s",
            "error",
        ]
    )
    for r in rows:
        w.writerow(
            [
                r["rank"],
                r["trial"],
                r["state"],
                r["value"],
                *(r["params"].get(n) for n in sweep.space),
                r["top1"],
                r["top5"],
                r["steps"],
                r["wall_time_s"],
                r["error"],
            ]
        )
    return out.getvalue()


def write_report(study, sweep: Sweep, workdir) -> tuple:
    """DIR/sweep.md, sweep.csv and sweep.png; returns (markdown, rows)."""
    from cnn_jax.report.plots import plot_sweep

    rows = trial_rows(study.get_trials(deepcopy=False), sweep)
    markdown = to_markdown(rows, sweep)
    (workdir / "sweep.md").write_text(markdown)
    (workdir / "sweep.csv").write_text(to_csv(rows, sweep))
    points = [
        {"state": r["state"], "params": r["params"], "value": None if r["value"] is None else 100.0 * r["value"]}
        for r in rows
    ]
    plot_sweep(
        points, {n: axis_kind(s) for n, s in sweep.space.items()}, f"minival {sweep.objective} %", workdir / "sweep.png"
    )
    return markdown, rows
