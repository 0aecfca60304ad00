"""What a run writes about itself in its workdir: the config it was started with (a different
config is refused), and results.json, the completed run's record or a failed or preempted
run's status, which never replaces a completed record."""

import json
import pathlib

import jax

from cnn_jax.config import config_differences
from cnn_jax.errors import UserError
from cnn_jax.report.summary import summarize
from cnn_jax.train import accumulate, parallel
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.ema import eval_weights_name
from cnn_jax.train.optim import base_learning_rate
from cnn_jax.train.reporting import write_json_atomic


def check_workdir(workdir: pathlib.Path, resolved: dict, allow_change: bool) -> None:
    saved = workdir / "config.json"
    if not saved.exists():
        return
    diff = config_differences(json.loads(saved.read_text()), resolved)
    if diff and not allow_change:
        raise UserError(
            f"Workdir {workdir} holds a run of a different config (differs in "
            f"{', '.join(diff[:5])}{'...' if len(diff) > 5 else ''}); use a new --workdir, "
            "or pass --allow-config-change to continue it with the new config."
        )


def completed_results(
    run,
    status: str,
    step: int,
    val: dict | None,
    wall: float,
    images_per_s: float,
    ckpts: Checkpoints,
    reported: dict,
    error: str = "",
) -> dict:
    """results.json of a run (a loop.Run) that ended with `status` at `step`."""
    s = summarize(run.model, run.input_shape)
    return {
        "model": run.config.model,
        "dataset": run.config.dataset,
        "params": s.total_params,
        "macs": s.total_macs,
        "input_size": run.pipeline.size,
        "top1": val["top1"] if val else None,
        "top5": val["top5"] if val else None,
        "eval_examples": val["count"] if val else 0,
        "steps": int(step),
        "total_steps": run.total_steps,
        "epochs": step / run.steps_per_epoch,
        "wall_time_s": wall,
        "images_per_s": images_per_s,
        "devices": int(run.mesh.devices.size),
        "processes": jax.process_count(),
        "device_kind": jax.devices()[0].device_kind,
        "eval_protocol": "center",
        "status": status,
        "best_step": ckpts.best_step(),
        "batch_size": int(run.config.batch_size),
        "grad_accum_steps": accumulate.steps_of(run.config),
        "dtype": run.config.dtype,
        "base_lr": base_learning_rate(run.config),
        "eval_weights": eval_weights_name(run.state),
        "error": error,
        "skipped_corrupt": run.pipeline.skipped_corrupt(),
        "train_access": run.pipeline.train_access(),
        "train_examples_decoded": {
            f"process {i}": n for i, n in enumerate(parallel.per_process(run.pipeline.decoded_train_examples()))
        },
        **reported,
    }


def record_failure(results_file: pathlib.Path, config, error: BaseException, status="failed", **fields) -> None:
    """Note a failed (or preempted) run in results.json, unless that file already holds a completed result."""
    if results_file.exists() and json.loads(results_file.read_text()).get("status") == "completed":
        return
    write_json_atomic(
        results_file,
        {
            "model": config.model,
            "dataset": config.dataset,
            "status": status,
            "error": str(error),
            "top1": None,
            "top5": None,
            **fields,
        },
    )
