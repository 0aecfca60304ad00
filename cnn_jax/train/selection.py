"""What chooses, and what is reported: decisions taken during training read minival only.

The reported split (validation or test) is never an input to a choice. With
`data.minival_size` > 0, minival (examples held out of the training split,
cnn_jax/data/minival.py) is evaluated at each evaluation step and it alone
* ranks the checkpoints: the best by minival top-1 is kept beside the latest ones
  (equal top-1: the later step);
* drives a plateau schedule;
* is a sweep's objective and what its pruner watches.
Without minival there is nothing to choose with: a plateau schedule and
`report_checkpoint=best_minival` are refused, and only the latest checkpoints are kept.

results.json's top-1/top-5 are the reported split's accuracy of the final checkpoint, or
of the best-by-minival one with `report_checkpoint=best_minival`; `reported_checkpoint`,
`reported_step` and `selection` say which and why.
"""

import logging

import jax.numpy as jnp

from cnn_jax.errors import UserError, did_you_mean

FINAL, BEST_MINIVAL = "final", "best_minival"
REPORT_CHECKPOINTS = (FINAL, BEST_MINIVAL)


def minival_size(config) -> int:
    return int(config.data.get("minival_size", 0) or 0)


def check_selection_config(config) -> None:
    """Refuse a config whose choices would read the reported split."""
    report = config.get("report_checkpoint", FINAL)
    if report not in REPORT_CHECKPOINTS:
        raise UserError(
            f"report_checkpoint {report!r} is unknown{did_you_mean(str(report), REPORT_CHECKPOINTS)}; "
            f"use one of {', '.join(REPORT_CHECKPOINTS)}."
        )
    if minival_size(config):
        return
    if config.schedule.name == "plateau":
        raise UserError(
            "The plateau schedule reacts to a held-out accuracy, and without minival that would be the "
            "reported split's; set --config.data.minival_size=N (examples held out of the training split)."
        )
    if report == BEST_MINIVAL:
        raise UserError(
            "report_checkpoint=best_minival needs minival to choose the checkpoint; set "
            "--config.data.minival_size=N, or --config.report_checkpoint=final."
        )


def plateau_update(control: dict, minival_top1: float, schedule_cfg) -> dict:
    """Multiply the learning rate by `factor` after `patience` minival evaluations without a
    top-1 gain of `min_delta`."""
    best, bad, scale = float(control["best_top1"]), int(control["bad_evals"]), float(control["lr_scale"])
    if minival_top1 > best + float(schedule_cfg.min_delta):
        best, bad = minival_top1, 0
    else:
        bad += 1
        if bad >= int(schedule_cfg.patience):
            scale, bad = scale * float(schedule_cfg.factor), 0
            logging.info("minival top-1 plateaued: learning rate x%g (scale now %g)", schedule_cfg.factor, scale)
    return {"lr_scale": jnp.float32(scale), "best_top1": jnp.float32(best), "bad_evals": jnp.int32(bad)}


def reported_step(config, final_step: int, best_step: int | None) -> int:
    """The step whose checkpoint results.json reports."""
    if config.get("report_checkpoint", FINAL) == FINAL:
        return final_step
    if best_step is None:  # check_selection_config makes this unreachable through train
        raise UserError("No checkpoint was chosen on minival; train with --config.data.minival_size=N.")
    return best_step


def selection_fields(config, step: int, evaluations: int, num_minival: int, minival: dict | None) -> dict:
    """results.json's account of the reported checkpoint: which, why, and its minival accuracy."""
    report = config.get("report_checkpoint", FINAL)
    why = (
        "final checkpoint, no selection"
        if report == FINAL
        else f"best of {evaluations} evaluations on minival ({num_minival} examples carved from {config.train_split})"
    )
    return {
        "reported_checkpoint": report,
        "reported_step": int(step),
        "selection": why,
        "minival_top1": minival["top1"] if minival else None,
        "minival_top5": minival["top5"] if minival else None,
        "minival_examples": num_minival,
        "minival_evaluations": evaluations,
    }
