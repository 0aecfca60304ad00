"""Running a sweep on Optuna: the study, one trial = one training workdir, the worker loop.

The study lives in an SQL database (`DIR/sweep.db` by default), so any number of worker
processes, here or on other machines, share it. Each trial trains into `DIR/trial_NNNN`
with the ordinary training loop, so it resumes from its checkpoints like any run.

Interruptions: a worker that dies (SIGKILL, lost machine) stops its heartbeat; once the
heartbeat is older than the grace period, whichever worker looks next marks the trial FAIL
and re-queues its parameters (Optuna's RetryHeartbeatStaleTrialCallback). Ctrl-C re-queues
at once. A re-queued trial trains in the workdir of the trial it replaces, so it resumes
from that trial's last checkpoint instead of starting over.

A trial's objective, and what the pruner watches, is its minival accuracy (examples held
out of the training split, `data.minival_size`), never the reported split's: picking the
best of many trials by the reported split would overstate it.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from cnn_jax.config import config_from_flags
from cnn_jax.errors import UserError
from cnn_jax.sweeps.spec import Sweep, make_pruner, make_sampler, suggest, trial_argv

HEARTBEAT_S = 10
POLL_S = 1.0  # how often an idle worker looks for re-queued trials (one cheap query)
GRACE_FACTOR = 3  # a trial is taken as abandoned after this many missed heartbeats


def _quietly(make):
    """Heartbeats and their retry callback are stable since Optuna 2.8 but still flagged
    experimental; the warning on every call would bury the training log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make()


RETRY = _quietly(lambda: RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True))


def default_storage(workdir) -> str:
    return f"sqlite:///{(workdir / 'sweep.db').absolute()}"


def open_storage(url: str, heartbeat_s: int = HEARTBEAT_S):
    # SQLite serialises writers; a generous lock timeout lets several workers share one file.
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return _quietly(
            lambda: optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=int(heartbeat_s),
                grace_period=GRACE_FACTOR * int(heartbeat_s),
                heartbeat_stale_trial_callback=RETRY,
            )
        )
    except Exception as e:  # noqa: BLE001  (SQLAlchemy raises many types for a bad URL)
        raise UserError(
            f"Cannot open the sweep storage {url!r} ({type(e).__name__}: {e}); pass an SQLAlchemy "
            "URL such as sqlite:///runs/sweep/sweep.db or postgresql://user@host/db."
        ) from None


def _jsonable(value):
    return json.loads(json.dumps(value))


def open_study(sweep: Sweep, storage, study_name: str):
    """Create the study, or load it and check it was started from the same sweep definition."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=sweep.direction,
        sampler=make_sampler(sweep),
        pruner=make_pruner(sweep.pruner),
        load_if_exists=True,
    )
    wanted, stored = _jsonable(sweep.definition()), study.user_attrs.get("definition")
    if stored is None:
        study.set_user_attr("definition", wanted)
    elif stored != wanted:
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise UserError(
            f"The study {study_name!r} in this storage was started from a different sweep "
            f"(differs in {', '.join(changed)}); use a new --workdir (or --study-name), "
            "or restore the sweep file. Only TRIALS and PRUNER may change between runs."
        )
    return study


# The system attributes Optuna's RetryHeartbeatStaleTrialCallback gives a re-queued trial (read
# directly: its static readers warn that they are experimental on every call).
def trial_origin(t) -> int:
    """The number of the trial whose workdir `t` uses: its own, or the first one it continues."""
    return t.system_attrs.get("failed_trial", t.number)


def replaced_numbers(trials) -> set:
    """Trials that were re-queued: a later trial carries on their work."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def takes_budget(t, replaced: set) -> bool:
    """Finished, running or queued work the budget pays for (not surplus, not re-queued, not a
    trial that died without an error of its own and awaits its re-queue)."""
    if t.user_attrs.get("surplus") or t.number in replaced:
        return False
    if t.state == TrialState.FAIL:
        return "error" in t.user_attrs
    return True


def budget_used(trials) -> int:
    replaced = replaced_numbers(trials)
    return sum(takes_budget(t, replaced) for t in trials)


def _is_surplus(trials, me, budget: int) -> bool:
    """Workers that looked at the budget at the same moment may each start a trial; the ones
    created after the budget was taken give their slot up. A re-queued trial never does."""
    if trial_origin(me) != me.number:
        return False
    replaced = replaced_numbers(trials)
    ahead = [
        t
        for t in trials
        if t.number != me.number and takes_budget(t, replaced) and (t.number < me.number or trial_origin(t) != t.number)
    ]
    return len(ahead) >= budget


def _frozen(study, number: int):
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _pruning_hook(trial, key: str):
    def on_eval(step: int, evaluations: dict) -> None:
        value = float(evaluations["minival"][key])
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}: minival {key} {value:.4f}")

    return on_eval


def _mark_pruned(run_dir, error: Exception) -> None:
    from cnn_jax.train.reporting import write_json_atomic

    path = run_dir / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    write_json_atomic(path, {**results, "status": "pruned", "error": str(error)})


def make_objective(sweep: Sweep, study, workdir, budget: int, num_devices: int = 0):
    # Training (jax, tensorflow) is imported only when trials run: loading a sweep file,
    # checking it and writing a report stay quick.
    from cnn_jax.train import loop
    from cnn_jax.train.reporting import setup_logging

    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial) -> float:
        me = _frozen(study, trial.number)
        if _is_surplus(study.get_trials(deepcopy=False), me, budget):
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("surplus: other workers had already taken the whole budget")
        params = {name: suggest(trial, name, spec) for name, spec in sweep.space.items()}
        run_dir = workdir / f"trial_{trial_origin(me):04d}"
        trial.set_user_attr("workdir", run_dir.name)
        trial.set_user_attr("worker", worker)
        logging.info("trial %d -> %s: %s", trial.number, run_dir, params)
        try:
            config, _ = config_from_flags(trial_argv(sweep, params))
            result = loop.train_and_evaluate(
                config, run_dir, num_devices=num_devices, on_eval=_pruning_hook(trial, sweep.objective)
            )
        except optuna.TrialPruned as e:
            _mark_pruned(run_dir, e)
            raise
        except KeyboardInterrupt:
            RETRY(study, _frozen(study, trial.number))  # the next run resumes it from its workdir
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        finally:
            setup_logging(None)  # drop the trial's log file handler
        for key in (
            "top1",
            "top5",
            "minival_top1",
            "minival_top5",
            "params",
            "macs",
            "steps",
            "epochs",
            "wall_time_s",
            "images_per_s",
        ):
            trial.set_user_attr(key, result.get(key))
        value = result.get(f"minival_{sweep.objective}")
        if value is None:
            trial.set_user_attr("error", f"results.json of {run_dir} has no minival_{sweep.objective}")
            raise ValueError(trial.user_attrs["error"])
        return float(value)

    return objective


def _fail_stale(study) -> None:
    _quietly(lambda: optuna.storages.fail_stale_trials(study))


def run_worker(sweep: Sweep, study, workdir, budget: int, num_devices: int = 0, poll_s: float = POLL_S) -> None:
    """Run trials until the budget is used, then wait for the other workers' trials: one of
    them may turn out abandoned and come back to the queue for this worker to finish."""
    objective = make_objective(sweep, study, workdir, budget, num_devices)
    while True:
        _fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or budget_used(trials) < budget:
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
        elif any(t.state == TrialState.RUNNING for t in trials):
            time.sleep(poll_s)
        else:
            return


def worker_command(
    sweep: Sweep, workdir, storage_url: str, study_name: str, trials: int, heartbeat_s: int, num_devices: int
) -> list:
    return [
        sys.executable,
        "-m",
        "cnn_jax",
        "sweep",
        str(sweep.path.absolute()),
        "--workdir",
        str(workdir.absolute()),
        "--storage",
        storage_url,
        "--study-name",
        study_name,
        "--trials",
        str(trials),
        "--heartbeat",
        str(heartbeat_s),
        "--num-devices",
        str(num_devices),
        "--worker",
    ]


def run_workers(n: int, command: list, work) -> list:
    """N workers sharing the study: N-1 child processes running `command`, and this process
    calling `work()`. Returns the children's exit codes. Ctrl-C reaches each child (they
    re-queue their trials) and is re-raised once they have stopped."""
    procs = [subprocess.Popen(command) for _ in range(n - 1)]
    try:
        work()
        return [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # in case the terminal did not send it to the group
        for p in procs:
            p.wait()
        raise
