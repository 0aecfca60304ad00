"""The training loop: data -> jitted steps over the mesh -> checkpoints, evaluation, results.

Every event happens at a step number fixed by the config (log, eval, checkpoint),
so a run resumed from a checkpoint repeats exactly what the uninterrupted run did.
Choices (best checkpoint, plateau) read minival, never the reported split
(cnn_jax/train/selection.py); the final evaluation writes per-example predictions
(cnn_jax/train/predictions.py).
"""

import dataclasses
import json
import logging
import math
import pathlib
import time

import jax
import jax.numpy as jnp

from cnn_jax import models
from cnn_jax.config import flatten, resolve_for_platform, to_dict
from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline, Sharding, steps_per_epoch
from cnn_jax.errors import TrainingDiverged, UserError
from cnn_jax.layers import impls
from cnn_jax.train import accumulate, parallel, predictions, preemption, run_record, selection
from cnn_jax.train.checkpoint import Checkpoints
from cnn_jax.train.ema import init_ema
from cnn_jax.train.optim import base_learning_rate, learning_rate_schedule, make_optimizer
from cnn_jax.train.reporting import MetricsWriter, Progress, setup_logging, write_json_atomic
from cnn_jax.train.state import create_state, init_program
from cnn_jax.train.steps import make_eval_step, make_train_step, zero_eval_metrics, zero_train_metrics

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass
class Run:
    """Everything built from a config: data, model, state template and the step functions."""

    config: object
    source: object
    pipeline: Pipeline
    mesh: object
    model: object
    state: object
    schedule: object
    steps_per_epoch: int
    total_steps: int
    input_shape: tuple


def compute_dtype(name: str):
    if name not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, not {name!r}.")
    return DTYPES[name]


def total_train_steps(config, spe: int) -> int:
    if config.num_train_steps and config.num_train_steps > 0:
        return int(config.num_train_steps)
    if config.num_epochs and config.num_epochs > 0:
        return max(1, int(math.ceil(config.num_epochs * spe)))
    raise UserError("Neither num_epochs nor num_train_steps is set; pass --config.num_epochs=N.")


def every(value: int, spe: int) -> int:
    """A period in steps; 0 means once per epoch."""
    return int(value) if value and value > 0 else spe


def build_run(config, num_devices: int = 0) -> Run:
    config = resolve_for_platform(config, jax.default_backend())
    batch_sizes = (int(config.batch_size), int(config.eval_batch_size or config.batch_size))
    k = accumulate.steps_of(config)  # a forward pass sees a micro-batch of batch_size / k
    mesh = parallel.make_mesh(num_devices, (accumulate.micro_batch_size(batch_sizes[0], k), batch_sizes[1]))
    parallel.check_batch_divisible(batch_sizes[0], mesh)
    accumulate.check_micro_batch_divisible(batch_sizes[0], k, mesh.devices.size)
    parallel.check_batch_divisible(batch_sizes[1], mesh, "eval_batch_size")
    source = open_source(
        config.dataset, config.data_dir, config.train_split, config.eval_split, config.data.get("idx_dir", "")
    )
    pipeline = Pipeline(source, config, Sharding(jax.process_index(), jax.process_count()))
    spe = steps_per_epoch(pipeline.num_train, int(config.batch_size))  # less skipped corrupt images
    total = total_train_steps(config, spe)
    model = models.create_model(
        config.model, num_classes=source.num_classes, dtype=compute_dtype(config.dtype), **dict(config.model_kwargs)
    )
    model = _with_bn_groups(model, config)
    schedule = learning_rate_schedule(config, spe, total)
    if config.optimizer.get("lr_reference_batch"):
        logging.info(
            "learning rate %g per batch %d -> %g for batch %d (linear scaling rule)",
            config.optimizer.lr,
            config.optimizer.lr_reference_batch,
            base_learning_rate(config),
            config.batch_size,
        )
    tx = make_optimizer(config, schedule)
    input_shape = (1, pipeline.size, pipeline.size, pipeline.channels)
    rng = jax.random.key(int(config.seed))
    ema_decay = float(config.get("ema_decay", 0.0))
    state = init_program(lambda r: create_state(model, tx, r, input_shape, ema_decay), parallel.replicated(mesh))(rng)
    state = state.replace(apply_fn=impls.wrap(state.apply_fn, config))
    if config.get("bn_group_size") and not state.batch_stats:
        raise UserError(f"bn_group_size is set but {config.model} has no BatchNorm; set --config.bn_group_size=0.")
    if config.get("transfer") and config.transfer.init_from:
        state = _transfer_state(config, state, model)
    return Run(config, source, pipeline, mesh, model, state, schedule, spe, total, input_shape)


def _with_bn_groups(model, config):
    """The model with ghost BatchNorm over `bn_group_size` examples (0: over the whole batch)."""
    group = int(config.get("bn_group_size", 0))
    if not group:
        return model
    if group < 0:
        raise UserError(f"bn_group_size must be a number of examples or 0 (whole batch), not {group}.")
    if "bn_group_size" not in type(model).__dataclass_fields__:
        raise UserError(
            f"bn_group_size={group} needs a model with BatchNorm, and {config.model} has none; "
            "set --config.bn_group_size=0."
        )
    if int(config.batch_size) % group:
        raise UserError(
            f"batch_size {config.batch_size} is not divisible by bn_group_size {group}; "
            "pick a group size that divides the global batch."
        )
    accumulate.check_bn_groups(int(config.batch_size), accumulate.steps_of(config), group)
    return model.clone(bn_group_size=group)


def _transfer_state(config, state, model):
    """Initial weights from `transfer.init_from`; the optimizer freezes or slows the backbone."""
    from cnn_jax.train import transfer

    pretrained = transfer.load_pretrained(config.transfer.init_from, config.model)
    params, status = transfer.merge(jax.device_get(state.params), pretrained.get("params", {}))
    batch_stats, _ = transfer.merge(jax.device_get(state.batch_stats), pretrained.get("batch_stats", {}))
    transfer.log_status(status)
    tx = transfer.wrap_optimizer(state.tx, config.transfer, transfer.param_labels(status))
    repl = jax.sharding.NamedSharding(state.step.sharding.mesh, jax.sharding.PartitionSpec())
    params, batch_stats = jax.device_put((params, batch_stats), repl)
    ema = init_ema({"params": params, "batch_stats": batch_stats}, bool(state.ema))
    return state.replace(
        params=params, batch_stats=batch_stats, tx=tx, ema=ema, opt_state=jax.jit(tx.init, out_shardings=repl)(params)
    )


def evaluate(
    run: Run, state, eval_step=None, pipeline_eval=None, minival: bool = False, keep_predictions: bool = False
) -> dict:
    """Top-1/top-5 and loss over the whole eval split, or minival (padded examples masked out).
    `keep_predictions`: `eval_step` is a prediction step (predictions.jit_prediction_step), and
    the result holds the per-example `predictions`."""
    if eval_step is None:
        eval_step = (
            predictions.jit_prediction_step(run.mesh)
            if keep_predictions
            else jax.jit(make_eval_step(), donate_argnums=(2,))
        )
    batch_size = int(run.config.eval_batch_size or run.config.batch_size)
    batches = pipeline_eval if pipeline_eval is not None else run.pipeline.eval_batches(batch_size, minival=minival)
    sums, per_batch = jax.device_put(zero_eval_metrics(), parallel.replicated(run.mesh)), []
    for batch in parallel.prefetch_to_mesh(batches, run.mesh):
        sums = eval_step(state, batch, sums)
        if keep_predictions:
            sums, outputs = sums
            per_batch.append(outputs)
    sums = jax.device_get(sums)
    if float(sums["count"]) == 0:
        what = f"minival of split {run.source.train_split!r}" if minival else f"split {run.source.eval_split!r}"
        raise RuntimeError(f"evaluation of {run.config.dataset!r} {what} saw no examples")
    n = float(sums["count"])
    result = {
        "top1": float(sums["top1"]) / n,
        "top5": float(sums["top5"]) / n,
        "loss": float(sums["loss_sum"]) / n,
        "count": int(sums["count"]),
    }
    if keep_predictions:
        result["predictions"] = predictions.gather(per_batch)
    return result


def train_and_evaluate(config, workdir, allow_config_change: bool = False, num_devices: int = 0, on_eval=None) -> dict:
    """Train (or resume) the run in `workdir` and evaluate it. `on_eval(step, evaluations)`, if
    given, is called after each evaluation and its checkpoint with {"val": the reported split's
    metrics, "minival": minival's or None}; it may raise to stop the run (a sweep prunes a
    trial this way)."""
    selection.check_selection_config(config)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    setup_logging(workdir)
    resolved = to_dict(resolve_for_platform(config, jax.default_backend()))
    run_record.check_workdir(workdir, resolved, allow_config_change)
    run = build_run(config, num_devices)
    ckpts = Checkpoints(
        workdir / "checkpoints", int(config.keep_checkpoints), keep_best=selection.minival_size(config) > 0
    )
    restored = ckpts.restore(run.state)
    state, start, meta = run.state, 0, {}
    if restored is not None:
        start, state, meta = restored
        logging.info("resuming %s from step %d", workdir, start)
    results_file = workdir / "results.json"
    if start >= run.total_steps and results_file.exists():
        done = json.loads(results_file.read_text())
        if done.get("status") == "completed":
            logging.info("%s already finished (%d steps); nothing to do", workdir, start)
            ckpts.close()
            return done
    write_json_atomic(workdir / "config.json", resolved)
    writer = MetricsWriter(workdir)
    if start == 0:
        writer.write_hparams(flatten(resolved))
    try:
        with preemption.StopSignals(start) as stop:
            return _loop(run, state, start, ckpts, writer, workdir, on_eval, meta, stop)
    except preemption.Preempted as e:
        logging.warning("%s", e)
        run_record.record_failure(
            results_file, config, e, status="preempted", steps=e.step, total_steps=run.total_steps
        )
        raise
    except Exception as e:
        run_record.record_failure(results_file, config, e)
        raise
    finally:
        ckpts.close()
        writer.close()


def _evaluate_both(run: Run, state, eval_step, predict_step=None) -> tuple:
    """The reported split's metrics (with predictions when given a prediction step) and
    minival's (None without minival)."""
    val = evaluate(run, state, predict_step or eval_step, keep_predictions=predict_step is not None)
    return val, evaluate(run, state, eval_step, minival=True) if run.pipeline.minival_size else None


def _log_evaluation(writer: MetricsWriter, step: int, epoch: float, val: dict, minival: dict | None) -> None:
    scalars = {"val/top1": val["top1"], "val/top5": val["top5"], "val/loss": val["loss"], "epoch": epoch}
    if minival:
        scalars.update({f"minival/{k}": minival[k] for k in ("top1", "top5", "loss")})
    writer.write(step, scalars)
    on_minival = f"; minival top1={minival['top1']:.4f} ({minival['count']})" if minival else ""
    logging.info(
        "step %d eval: top1=%.4f top5=%.4f loss=%.4f (%d examples)%s",
        step,
        val["top1"],
        val["top5"],
        val["loss"],
        val["count"],
        on_minival,
    )


def _reported(run: Run, state, ckpts: Checkpoints, final: tuple, eval_step, predict_step) -> tuple:
    """(step, reported split's metrics with predictions, minival's) of the checkpoint results.json
    reports: the final one, or the best by minival re-evaluated from its checkpoint."""
    step = selection.reported_step(run.config, run.total_steps, ckpts.best_step())
    if step == run.total_steps:
        return (step, *final)
    restored = ckpts.restore(state, step)
    if restored is None:
        raise RuntimeError(f"the best checkpoint by minival (step {step}) is unreadable")
    return (step, *_evaluate_both(run, restored[1], eval_step, predict_step))


def _loop(
    run: Run,
    state,
    start: int,
    ckpts: Checkpoints,
    writer: MetricsWriter,
    workdir,
    on_eval=None,
    resumed: dict | None = None,
    stop: preemption.StopSignals | None = None,
) -> dict:
    """`resumed`: the meta of the checkpoint resumed (minival evaluations and the training's wall
    time before `start`); `stop` says when a signal stops the run."""
    resumed = resumed or {}
    evaluations = int(resumed.get("minival_evaluations", 0))
    cfg, total, spe = run.config, run.total_steps, run.steps_per_epoch
    repl = parallel.replicated(run.mesh)
    train_step = jax.jit(
        make_train_step(
            float(cfg.loss.label_smoothing),
            float(cfg.loss.aux_weight),
            float(cfg.get("ema_decay", 0.0)),
            bool(cfg.get("ema_warmup", True)),
            accumulate.steps_of(cfg),
        ),
        donate_argnums=(0, 2),
        out_shardings=(repl, repl),
    )
    eval_step = jax.jit(make_eval_step(), donate_argnums=(2,))
    predict_step = predictions.jit_prediction_step(run.mesh)
    uses_minival = run.pipeline.minival_size > 0
    log_every, eval_every = every(cfg.log_every_steps, spe), every(cfg.eval_every_steps, spe)
    ckpt_every = every(cfg.checkpoint_every_steps, spe)
    clock = preemption.CheckpointClock(cfg.get("checkpoint_every_minutes", 0.0))
    progress = Progress(total, start, int(cfg.batch_size), bool(cfg.progress_bar))
    metrics = jax.device_put(zero_train_metrics(), repl)
    batches = parallel.prefetch_to_mesh(run.pipeline.train_batches(start, total), run.mesh)
    last_val, last_minival, last_good_ckpt = None, None, ckpts.steps()[-1] if ckpts.steps() else None
    train_time, trained_images, wall0 = 0.0, 0, time.perf_counter() - float(resumed.get("wall_time_s", 0.0))
    t0 = time.perf_counter()
    for step in range(start, total):
        state, metrics = train_step(state, next(batches), metrics)
        s = step + 1
        # With minival every evaluated state is saved, so each is a candidate for the best checkpoint.
        do_eval = s % eval_every == 0 or s == total
        do_ckpt = s % ckpt_every == 0 or s == total or (do_eval and uses_minival)
        fetching = s % log_every == 0 or do_eval or do_ckpt
        stopping = stop is not None and stop.reached(s) and s < total
        do_ckpt = do_ckpt or stopping or clock.due(fetching)
        if not (fetching or do_ckpt):
            continue
        fetched = jax.device_get(metrics)
        train_time += time.perf_counter() - t0
        trained_images += int(fetched["steps"]) * int(cfg.batch_size)
        if int(fetched["first_bad_step"]) >= 0:
            bad = int(fetched["first_bad_step"]) + 1
            kept = (
                f"the last good checkpoint (step {last_good_ckpt}) is kept"
                if last_good_ckpt
                else "no checkpoint was written"
            )
            raise TrainingDiverged(
                f"The loss became NaN or infinite at step {bad}; {kept}: lower "
                "--config.optimizer.lr (or add warmup / gradient clipping) and run again."
            )
        n = max(float(fetched["count"]), 1.0)
        scalars = {
            "train/loss": float(fetched["loss_sum"]) / n,
            "train/top1": float(fetched["correct"]) / n,
            "lr": float(run.schedule(step)) * float(state.control["lr_scale"]),
            "epoch": s / spe,
        }
        scalars["train/images_per_s"] = progress.update(s, {k: scalars[k] for k in ("train/loss", "lr")})
        writer.write(s, scalars)
        metrics = jax.device_put(zero_train_metrics(), repl)
        fresh_minival = None
        if do_eval:  # the final evaluation keeps each example's predictions
            last_val, last_minival = _evaluate_both(run, state, eval_step, predict_step if s == total else None)
            _log_evaluation(writer, s, s / spe, last_val, last_minival)
            if uses_minival:
                evaluations, fresh_minival = evaluations + 1, last_minival["top1"]
            if cfg.schedule.name == "plateau":  # check_selection_config guarantees minival here
                state = state.replace(
                    control=jax.device_put(
                        selection.plateau_update(jax.device_get(state.control), fresh_minival, cfg.schedule), repl
                    )
                )
        if do_ckpt:
            wall = time.perf_counter() - wall0
            meta = {"step": s, "model": cfg.model, "minival_evaluations": evaluations, "wall_time_s": wall}
            ckpts.save(s, state, meta, fresh_minival)
            last_good_ckpt = s
            clock.saved()
        if on_eval is not None and do_eval:
            on_eval(s, {"val": last_val, "minival": last_minival})
        if stopping:
            ckpts.wait()  # with the signals still caught: a repeated one cannot cut the write short
            raise preemption.Preempted(s, total, stop.cause())
        t0 = time.perf_counter()
    if stop is not None:
        stop.after_last_step()
    progress.close()
    ckpts.wait()
    if last_val is None or "predictions" not in last_val:  # resumed after the last step: evaluate it here
        last_val, last_minival = _evaluate_both(run, state, eval_step, predict_step)
    step, reported, reported_minival = _reported(run, state, ckpts, (last_val, last_minival), eval_step, predict_step)
    file = predictions.file_name("center")
    predictions.write(pathlib.Path(workdir) / file, reported.pop("predictions"), step)
    fields = {
        **selection.selection_fields(cfg, step, evaluations, run.pipeline.num_minival, reported_minival),
        "predictions": {"center": file},
    }
    images_per_s = trained_images / train_time if train_time > 0 else 0.0
    result = run_record.completed_results(
        run, "completed", total, reported, time.perf_counter() - wall0, images_per_s, ckpts, fields
    )
    write_json_atomic(pathlib.Path(workdir) / "results.json", result)
    logging.info(
        "finished %s: top1=%.4f top5=%.4f (%s checkpoint, step %d)",
        cfg.model,
        reported["top1"],
        reported["top5"],
        fields["reported_checkpoint"],
        step,
    )
    return result
