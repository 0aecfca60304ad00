"""`cnn-jax eval`: evaluate a workdir's checkpoint (latest, best by minival, or a step) with an
eval protocol; writes eval_<protocol>.json and the per-example predictions_<protocol>.npz."""

import functools
import json
import logging
import pathlib

import ml_collections

from cnn_jax.errors import UserError
from cnn_jax.train import predictions
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.ema import eval_variables, eval_weights_name
from cnn_jax.train.loop import build_run, evaluate
from cnn_jax.train.reporting import setup_logging, write_json_atomic

PROTOCOLS = ("center", "10crop", "dense")


def load_workdir_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
    path = workdir / "config.json"
    if not path.exists():
        raise UserError(f"{workdir} has no config.json; pass the --workdir of a `cnn-jax train` run.")
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    for key in ("boundaries_epochs",):  # JSON has no tuples
        config.schedule[key] = tuple(config.schedule[key])
    return config


def pick_step(ckpts: Checkpoints, which: str) -> int:
    """`latest` (or `final`): the newest checkpoint; `best`: the best by minival top-1, which
    only a run with minival has (a checkpoint is never chosen by the reported split)."""
    steps = ckpts.steps()
    if not steps:
        raise UserError(f"No checkpoint in {ckpts.directory}; train first or pass the right --workdir.")
    if which in ("latest", "final"):
        return steps[-1]
    if which == "best":
        best = ckpts.best_step()
        if best is None:
            raise UserError(
                f"{ckpts.directory.parent} has no checkpoint chosen on minival (its run held out no "
                "minival); use --step latest, or train with --config.data.minival_size=N."
            )
        return best
    if not which.isdigit() or int(which) not in steps:
        raise UserError(f"--step {which!r} is not one of latest, best or the saved steps {steps}.")
    return int(which)


def evaluate_protocol(run, state, protocol: str) -> dict:
    """Centre crop through the standard eval; 10-crop and dense on the recipe's resized
    square, with the protocol choosing the views the network sees. The result holds the
    per-example `predictions`."""
    if protocol == "center":
        return evaluate(run, state, keep_predictions=True)
    from cnn_jax.data import eval_protocols

    recipe, size = run.pipeline.recipe, run.pipeline.size
    model_kwargs = {}
    if protocol == "dense":
        side = max(recipe.dense_scales(size))
        if "fully_convolutional" in type(run.model).__dataclass_fields__:
            model_kwargs["fully_convolutional"] = True
        protocol_fn = functools.partial(eval_protocols.dense, scales=recipe.dense_scales(size))
    else:
        side = recipe.eval_resize(size)
        protocol_fn = functools.partial(eval_protocols.ten_crop, crop=size)
    model = run.model.clone(**model_kwargs)

    def logits_fn(state, images):
        variables = eval_variables(state)
        return protocol_fn(lambda x: model.apply(variables, x, train=False), images)

    batch_size = int(run.config.eval_batch_size or run.config.batch_size)
    batches = run.pipeline.eval_batches(batch_size, lambda image: recipe.eval_square(image, size, side))
    return evaluate(run, state, predictions.jit_prediction_step(run.mesh, logits_fn), batches, keep_predictions=True)


def evaluate_workdir(workdir, protocol: str = "center", which: str = "latest", num_devices: int = 0) -> dict:
    workdir = pathlib.Path(workdir)
    setup_logging(None)
    if protocol not in PROTOCOLS:
        raise UserError(f"Unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}.")
    config = load_workdir_config(workdir)
    run = build_run(config, num_devices)
    ckpts = Checkpoints(workdir / "checkpoints", int(config.keep_checkpoints))
    try:
        step = pick_step(ckpts, which)
        restored = ckpts.restore(run.state, step)
        if restored is None:
            raise UserError(f"Checkpoint step {step} in {ckpts.directory} is unreadable; pass another --step.")
        _, state, _ = restored
    finally:
        ckpts.close()
    result = evaluate_protocol(run, state, protocol)
    file = predictions.file_name(protocol)
    predictions.write(workdir / file, result.pop("predictions"), step)
    result.update(
        {
            "model": config.model,
            "dataset": config.dataset,
            "step": step,
            "protocol": protocol,
            "eval_weights": eval_weights_name(state),
            "predictions": file,
        }
    )
    write_json_atomic(workdir / f"eval_{protocol}.json", result)
    logging.info("eval %s step %d (%s): top1=%.4f top5=%.4f", workdir, step, protocol, result["top1"], result["top5"])
    return result
