"""One config trained over several seeds, each seed an ordinary workdir.

Seed k trains with `--config.seed=k` added to the config's flags, into `DIR/seed<k>/`: the
same layout and flags as `cnn-jax train --config SPEC --workdir DIR/seed<k> --config.seed=<k>`
run by hand, so runs started either way are the same runs. A finished seed (results.json
says completed) is skipped and an interrupted one resumes from its checkpoint. One seed
keeps the config's own seed and trains in DIR itself, as a run without seeds always has.
"""

import logging
import pathlib

from cnn_jax.config import config_from_flags
from cnn_jax.errors import UserError
from cnn_jax.report.table import load_results
from cnn_jax.train.loop import train_and_evaluate
from cnn_jax.train.reporting import setup_logging


def check_seed_count(count, where: str) -> int | None:
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UserError(f'{where}: seeds must be a whole number of at least 1, not {count!r}; e.g. "seeds": 3.')
    return count


def seed_runs(base, count: int | None) -> list:
    """[(seed, workdir)]: [(None, base)] for no count or one seed, else seed k in base/seed<k>."""
    base = pathlib.Path(base)
    if count is None or count <= 1:
        return [(None, base)]
    return [(k, base / f"seed{k}") for k in range(count)]


def seed_argv(argv: list, seed: int | None) -> list:
    return list(argv) if seed is None else [*argv, f"--config.seed={seed}"]


def is_finished(workdir) -> bool:
    results = load_results(workdir)
    return bool(results) and results.get("status") == "completed"


def train_seeds(argv: list, runs: list, label: str, num_devices: int = 0) -> None:
    """Train every (seed, workdir) of `runs` that has not finished. A failing seed is logged
    (its results.json records the failure) and the others still train."""
    for seed, workdir in runs:
        name = label if seed is None else f"{label} seed {seed}"
        if is_finished(workdir):
            logging.info("%s: finished earlier, skipped", name)
            continue
        config, _ = config_from_flags(seed_argv(argv, seed))
        logging.info("%s: training %s on %s", name, config.model, config.dataset)
        try:
            train_and_evaluate(config, workdir, num_devices=num_devices)
        except Exception as e:  # noqa: BLE001  (a failed run is recorded; the others go on)
            logging.error("%s failed: %s", name, e)
        setup_logging(None)  # drop the run's log file handler
