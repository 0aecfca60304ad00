"""One entry trained over several seeds: its mean row, and how many digits its numbers support.

A single run of a small model can move by more than a point between seeds (or with nothing
but floating-point rounding changed), so a table row of several seeds shows the mean ± the
sample standard deviation, rounded to the spread, and its Δ to the paper says whether the
paper's number lies within our uncertainty.
"""

import math

from cnn_jax.report.stats import consistent_with, mean_and_std

SINGLE_RUN_DECIMALS = 2  # one run: the measured number as it is, its spread unknown


def decimals_for(std: float | None) -> int:
    """Decimals that a spread supports: the standard deviation's first significant digit below
    one point (0.8 -> 1, 0.04 -> 2, at most 3), one decimal from one point up (a guard digit
    that keeps a column aligned). Unknown or zero spread: SINGLE_RUN_DECIMALS."""
    if std is None or math.isnan(std) or std < 1e-9:  # equal seeds: a mean's rounding leaves ~1e-14
        return SINGLE_RUN_DECIMALS
    return min(3, max(1, -math.floor(math.log10(std))))


def format_mean_std(mean: float | None, std: float | None, decimals: int) -> str | None:
    """ "97.9 ± 0.8", or the one number when there is no spread."""
    if mean is None:
        return None
    return f"{mean:.{decimals}f}" if std is None else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _mean_of(rows: list, key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return mean_and_std(values)[0] if values else None


def _status(rows: list, asked: int) -> str:
    done = sum(r.get("status") == "completed" for r in rows)
    return "completed" if done == asked else f"{done}/{asked} seeds completed"


def mean_row(seed_rows: list, asked: int) -> dict:
    """The entry's row from its seeds' rows (table_row dicts, one per seed that has results):
    top-1/top-5 as mean and sample std over the completed seeds, `n`, the Δ of the mean, and
    whether the paper's number is within the uncertainty (`delta_within_uncertainty`: the
    paper's top-1 lies inside the 95% Student-t interval of the mean; None for n = 1)."""
    done = [r for r in seed_rows if r.get("status") == "completed" and r.get("top1_pct") is not None]
    row = {k: v for k, v in (done or seed_rows)[0].items() if k not in ("seed", "top1_pct", "top5_pct")}
    row.update({"seed": "all", "kind": "mean", "n": len(done), "status": _status(seed_rows, asked)})
    for key in ("top1", "top5"):
        values = [r[f"{key}_pct"] for r in done]
        mean, std = mean_and_std(values) if values and None not in values else (None, None)
        row[f"{key}_pct"], row[f"{key}_std"] = mean, std
    for key in ("epochs", "wall_time_s", "images_per_s"):
        row[key] = _mean_of(done, key)
    row["top1_decimals"], row["top5_decimals"] = decimals_for(row["top1_std"]), decimals_for(row["top5_std"])
    row["delta_top1"] = row["delta_within_uncertainty"] = None
    if row.get("delta_note") is None and row.get("published_top1") is not None and row["top1_pct"] is not None:
        row["delta_top1"] = row["top1_pct"] - row["published_top1"]
        row["delta_within_uncertainty"] = consistent_with([r["top1_pct"] for r in done], row["published_top1"])
    return row
