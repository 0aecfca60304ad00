"""A sweep's best trial trained again over seeds before it is reported (`--confirm-seeds N`).

The best of several trials came first partly by luck: its own seed's noise is part of why
it won on minival, and one seed says nothing of how far another would land (the winner's
curse, and seed noise). Its parameters trained over seeds 0..N-1, into
DIR/confirm_<trial>/seed<k>/, give the reported split's mean ± standard deviation over seeds,
the figure to quote for those parameters.
"""

import json
import pathlib

from cnn_jax.errors import UserError
from cnn_jax.report.stats import mean_and_std, mean_interval
from cnn_jax.report.table import load_results
from cnn_jax.sweeps.spec import Sweep, trial_argv


def confirmation_runs(workdir, trial: str, seeds: int) -> list:
    """[(seed, workdir)]: always seed<k>/ directories, even for one seed (the trial itself is the run
    without a seed override)."""
    base = pathlib.Path(workdir) / f"confirm_{trial}"
    return [(k, base / f"seed{k}") for k in range(seeds)]


def best_completed(rows: list) -> dict:
    """The report's best row (rows are sorted best first, completed trials before the others)."""
    if not rows or rows[0]["state"] != "COMPLETE":
        raise UserError(
            "The sweep has no completed trial to confirm over seeds; let trials finish, then run "
            "the same command again."
        )
    return rows[0]


def summarise(sweep: Sweep, best: dict, runs: list) -> dict:
    values = []
    for _, run_dir in runs:
        results = load_results(run_dir) or {}
        if results.get("status") == "completed" and results.get(sweep.objective) is not None:
            values.append(100.0 * results[sweep.objective])
    mean, std = mean_and_std(values) if values else (None, None)
    interval = mean_interval(values) if len(values) > 1 else None
    trial_value, picked_on = best.get(sweep.objective), best["value"]
    return {
        "trial": best["trial"],
        "params": best["params"],
        "objective": sweep.objective,
        "trial_value": None if trial_value is None else 100.0 * trial_value,
        "trial_minival": None if picked_on is None else 100.0 * picked_on,
        "seeds": [seed for seed, _ in runs],
        "values": values,
        "mean": mean,
        "std": std,
        "interval_95": list(interval) if interval else None,
    }


def confirm_best(sweep: Sweep, rows: list, workdir, seeds: int, num_devices: int = 0) -> dict:
    """Train the best trial's parameters over `seeds` seeds (finished seeds are kept), write
    DIR/confirm.json and return its summary."""
    from cnn_jax.train.seeds import train_seeds  # training (jax) only when asked for

    best = best_completed(rows)
    runs = confirmation_runs(workdir, best["trial"], seeds)
    train_seeds(trial_argv(sweep, best["params"]), runs, f"{best['trial']} confirmation", num_devices)
    summary = summarise(sweep, best, runs)
    (pathlib.Path(workdir) / "confirm.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def describe(summary: dict) -> str:
    name, trial = summary["objective"], summary["trial"]
    if summary["mean"] is None:
        return f"{trial} over seeds: no seed finished; see the log above."
    spread = "" if summary["std"] is None else f" ± {summary['std']:.2f} (sd)"
    found = "" if summary["trial_value"] is None else f"; the trial itself: {summary['trial_value']:.2f}%"
    return (
        f"{trial} ({summary['params']}) over {len(summary['values'])} seeds: {name} "
        f"{summary['mean']:.2f}%{spread} on the reported split{found}"
    )
