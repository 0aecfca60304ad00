"""`cnn-jax sweep FILE --workdir DIR`: run a sweep file's trials on an Optuna study, then
print and write its table (DIR/sweep.md, sweep.csv) and plot (DIR/sweep.png).

The study is `DIR/sweep.db` (SQLite) unless `--storage URL` names another database, which
workers on several machines can share. Starting the same command again continues the sweep:
finished trials are kept, interrupted ones resume from their workdirs. The pieces are in
`cnn_jax.sweeps` (spec: the sweep file; runner: trials and workers; report: the table).
"""

import argparse
import dataclasses
import logging
import pathlib

from cnn_jax.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnn-jax sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_file", help="a sweep file, e.g. experiments/sweeps/digits_lr.py")
    p.add_argument("--workdir", required=True, help="holds sweep.db, one trial_NNNN workdir per trial, the report")
    p.add_argument("--storage", default="", help="SQLAlchemy URL of the study (default: sqlite:///WORKDIR/sweep.db)")
    p.add_argument("--study-name", default="", help="study name in the storage (default: the sweep file's name)")
    p.add_argument("--trials", type=int, default=0, help="budget; overrides the file's TRIALS")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the study (this one and N-1 children)"
    )
    p.add_argument(
        "--heartbeat",
        type=int,
        default=0,
        help="seconds between a worker's heartbeats; a trial silent for 3 heartbeats is re-queued (default 10)",
    )
    p.add_argument("--num-devices", type=int, default=0, help="devices per trial (0 = all)")
    p.add_argument(
        "--confirm-seeds",
        type=int,
        default=0,
        help="train the best trial's parameters again over seeds 0..N-1 (DIR/confirm_TRIAL/seed<k>) "
        "and report their mean: the winner's own value is inflated by having been picked",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a child of --workers: no report
    return p


def run(argv: list) -> int:
    from cnn_jax.sweeps import report, runner
    from cnn_jax.sweeps.spec import load_sweep
    from cnn_jax.train.reporting import setup_logging

    a = _parser().parse_args(argv)
    if a.trials < 0 or a.workers < 1 or a.heartbeat < 0 or a.confirm_seeds < 0:
        raise UserError("--trials, --workers, --heartbeat and --confirm-seeds must be positive; e.g. --workers 2.")
    from cnn_jax.input_files import raise_problems, workdir_path_problems

    raise_problems(workdir_path_problems(a.workdir))
    sweep = load_sweep(a.sweep_file)
    if a.trials:
        sweep = dataclasses.replace(sweep, trials=a.trials)
    workdir = pathlib.Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    setup_logging(None)
    url = a.storage or runner.default_storage(workdir)
    heartbeat = a.heartbeat or runner.HEARTBEAT_S
    name = a.study_name or sweep.name
    study = runner.open_study(sweep, runner.open_storage(url, heartbeat), name)
    budget = sweep.budget()

    def work() -> None:
        runner.run_worker(sweep, study, workdir, budget, a.num_devices)

    if a.worker:
        work()
        return 0
    codes = []
    if a.workers == 1:
        work()
    else:
        logging.info("sweep %s: %d workers, budget %d trials, study %s in %s", name, a.workers, budget, name, url)
        codes = runner.run_workers(
            a.workers, runner.worker_command(sweep, workdir, url, name, sweep.trials, heartbeat, a.num_devices), work
        )
    markdown, rows = report.write_report(study, sweep, workdir)
    print(markdown, end="")
    print(f"({len(rows)} trials; table in {workdir}/sweep.md and sweep.csv, plot in {workdir}/sweep.png)")
    if a.confirm_seeds:
        from cnn_jax.sweeps.confirm import confirm_best, describe

        print(describe(confirm_best(sweep, rows, workdir, a.confirm_seeds, a.num_devices)))
        print(f"(seeds' summary in {workdir}/confirm.json)")
    if any(codes):
        raise UserError(
            f"Worker processes exited with codes {codes}; see their log above, then run the "
            "same command again to continue the sweep."
        )
    return 0
