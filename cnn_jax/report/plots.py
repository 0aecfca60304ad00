"""Figures for comparison tables and sweeps: accuracy against MACs, learning curves, and a
sweep's objective against each swept parameter.

Each function draws on its own `matplotlib.figure.Figure` with the Agg canvas (no pyplot,
so no global backend is switched and nothing needs a display), writes PNG, SVG or PDF by
the file's suffix, and returns the data it plotted so that tests and scripts can check
the picture against the numbers it claims to show.
"""

import json
import pathlib
import re

from cnn_jax.errors import UserError

FORMATS = (".png", ".svg", ".pdf")


def _new_figure(ncols: int, width: float = 6.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, path) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"Cannot write a plot to {str(path)!r}: name it with one of {', '.join(FORMATS)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _marker_area(params: float, largest: float) -> float:
    # Area proportional to the parameter count, so a 138M VGG reads as 23x a 6M GoogLeNet.
    return 30.0 + 570.0 * params / largest if largest > 0 else 60.0


def accuracy_points(rows: list) -> list:
    """The rows that can be placed on the accuracy-vs-MACs plane (top-1 and MACs known)."""
    points = []
    for r in rows:
        if r.get("top1_pct") is None or not r.get("macs"):
            continue
        points.append(
            {
                "label": str(r.get("model")),
                "macs": int(r["macs"]),
                "params": int(r.get("params") or 0),
                "top1": float(r["top1_pct"]),
                "published_top1": r.get("published_top1"),
            }
        )
    return points


def plot_accuracy_vs_macs(rows: list, path) -> list:
    """Top-1 (%) against MACs (log axis), marker area = parameters, each point labelled.

    `rows` are table rows (`cnn_jax.report.table.table_row`); a row with a published
    top-1 also gets a hollow marker at that accuracy, joined to the measured one.
    Returns the plotted points: [{label, macs, params, top1, published_top1}].
    """
    points = accuracy_points(rows)
    if not points:
        raise UserError("No run with both a top-1 and a MAC count to plot; pass workdirs of finished runs.")
    fig, (ax,) = _new_figure(1, 7.0, 5.0)
    largest = max(p["params"] for p in points)
    for i, p in enumerate(points):
        colour = f"C{i % 10}"
        ax.scatter(
            [p["macs"]],
            [p["top1"]],
            s=_marker_area(p["params"], largest),
            color=colour,
            alpha=0.75,
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
        )
        ax.annotate(
            f"{p['label']}\n{p['params'] / 1e6:.3g}M params",
            (p["macs"], p["top1"]),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
        if p["published_top1"] is not None:
            ax.scatter(
                [p["macs"]],
                [p["published_top1"]],
                s=_marker_area(p["params"], largest),
                facecolors="none",
                edgecolors=colour,
                linewidths=1.2,
                zorder=2,
            )
            ax.plot([p["macs"]] * 2, [p["top1"], p["published_top1"]], color=colour, linestyle=":", zorder=1)
    ax.set_xscale("log")
    ax.set_xlabel("multiply-accumulates per image (MACs)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy against compute (marker area = parameters; hollow = published)")
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, path)
    return points


def read_curves(workdir) -> dict:
    """Train loss and validation top-1 (%) against epochs from a workdir's metrics.jsonl.

    A resumed run logs the steps after its checkpoint again; the last record of a step wins.
    """
    path = pathlib.Path(workdir) / "metrics.jsonl"
    train, val = {}, {}
    if path.exists():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if "train/loss" in rec:
                train[rec["step"]] = (rec.get("epoch", rec["step"]), rec["train/loss"])
            if "val/top1" in rec:
                val[rec["step"]] = (rec.get("epoch", rec["step"]), 100.0 * rec["val/top1"])
    return {"train_loss": [train[s] for s in sorted(train)], "val_top1": [val[s] for s in sorted(val)]}


def _run_label(workdir) -> str:
    workdir = pathlib.Path(workdir)
    results = workdir / "results.json"
    model = json.loads(results.read_text()).get("model") if results.exists() else None
    # A suite entry's seeds are ENTRY/seed<k>: "seed0" alone would not say whose run it is.
    owner = workdir.parent.name if re.fullmatch(r"seed\d+", workdir.name) else workdir.name
    name = workdir.name if owner == workdir.name else f"{owner}/{workdir.name}"
    return f"{name} ({model})" if model and model != owner else name


def plot_learning_curves(workdirs, path) -> dict:
    """Train loss and validation top-1 against epochs, one line per workdir.

    Returns {label: {"train_loss": [(epoch, loss)], "val_top1": [(epoch, top1 %)]}}.
    """
    curves = {_run_label(d): read_curves(d) for d in workdirs}
    curves = {k: v for k, v in curves.items() if v["train_loss"] or v["val_top1"]}
    if not curves:
        raise UserError(
            f"No metrics.jsonl with training records in {', '.join(map(str, workdirs))}; "
            "pass workdirs of runs that have started."
        )
    fig, (loss_ax, acc_ax) = _new_figure(2)
    for i, (label, c) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        if c["train_loss"]:
            loss_ax.plot(*zip(*c["train_loss"]), color=colour, label=label)
        if c["val_top1"]:
            acc_ax.plot(*zip(*c["val_top1"]), color=colour, marker="o", markersize=3, label=label)
    loss_ax.set(xlabel="epoch", ylabel="train loss", title="Training loss")
    acc_ax.set(xlabel="epoch", ylabel="validation top-1 (%)", title="Validation top-1")
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    return curves


def curves_path(path) -> pathlib.Path:
    """Where `plot_table` puts the learning curves beside FILE: FILE_curves.SUFFIX."""
    path = pathlib.Path(path)
    return path.with_name(f"{path.stem}_curves{path.suffix}")


def plot_table(rows: list, workdirs, path) -> list:
    """`cnn-jax table --plot FILE`: accuracy vs MACs in FILE, learning curves in FILE_curves.SUFFIX.

    Returns the paths written (a figure with nothing to show is skipped, not an error).
    """
    written = []
    if accuracy_points(rows):
        plot_accuracy_vs_macs(rows, path)
        written.append(pathlib.Path(path))
    if any(c["train_loss"] or c["val_top1"] for c in map(read_curves, workdirs)):
        plot_learning_curves(workdirs, curves_path(path))
        written.append(curves_path(path))
    return written


def plot_sweep(trials: list, params: dict, objective: str, path) -> dict:
    """The objective against each swept parameter, one panel per parameter.

    `trials`: dicts with `state`, `value` (the objective, or the last intermediate value
    of a pruned trial) and `params`; `params`: name -> axis kind ("log", "linear" or
    "categorical"). Completed trials are filled dots,
    pruned ones crosses at their last reported value; failed trials are not drawn.
    Returns {param: {"complete": [(x, y)], "pruned": [(x, y)]}}.
    """
    names = list(params)
    if not names:
        raise UserError("The sweep has no parameters to plot.")
    fig, axes = _new_figure(len(names), 4.5, 4.0)
    plotted = {}
    for ax, name in zip(axes, names):
        series = {"complete": [], "pruned": []}
        for t in trials:
            kind = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(t["state"])
            if kind and t.get("value") is not None and name in t["params"]:
                series[kind].append((t["params"][name], float(t["value"])))
        categorical = params[name] == "categorical" or any(
            isinstance(x, (str, bool)) for s in series.values() for x, _ in s
        )
        for kind, marker in (("complete", "o"), ("pruned", "x")):
            if series[kind]:
                xs = [str(x) for x, _ in series[kind]] if categorical else [x for x, _ in series[kind]]
                ax.scatter(xs, [y for _, y in series[kind]], marker=marker, label=kind, zorder=3)
        if params[name] == "log" and not categorical and all(x > 0 for s in series.values() for x, _ in s):
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=objective, title=f"{objective} against {name}")
        ax.grid(True, alpha=0.3)
        if series["pruned"]:
            ax.legend(fontsize=8)
        plotted[name] = series
    _save(fig, path)
    return plotted
