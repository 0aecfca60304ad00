"""Pure step functions. Metrics are summed on device and fetched every few steps."""

import jax
import jax.numpy as jnp
import optax

from cnn_jax.train.accumulate import accumulate_gradients
from cnn_jax.train.ema import decay_at, eval_variables, update_ema
from cnn_jax.train.state import TrainState


def split_outputs(outputs):
    """Models with auxiliary heads return (logits, aux1, ...) in training."""
    if isinstance(outputs, (tuple, list)):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """`labels`: integer classes [N], or soft targets [N, K] that sum to 1 (Mixup/CutMix)."""
    if labels.ndim == logits.ndim:
        targets = labels.astype(jnp.float32)
    else:
        targets = jax.nn.one_hot(labels, logits.shape[-1])
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def zero_train_metrics() -> dict:
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "steps": jnp.zeros((), jnp.int32),
        "first_bad_step": jnp.full((), -1, jnp.int32),
    }


def zero_eval_metrics() -> dict:
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "top1": jnp.zeros((), jnp.float32),
        "top5": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
    }


def zero_batch_sums() -> dict:
    return {
        "loss_sum": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "bad": jnp.zeros((), jnp.float32),
    }


def batch_sums(loss, logits, labels) -> dict:
    """One batch's additive share of the training metrics: its mean loss times its size, its
    correct predictions, its size, and 1 if its loss is not finite."""
    n = labels.shape[0]
    classes = labels if labels.ndim == 1 else jnp.argmax(labels, -1)  # a mixed (soft) label: its larger component
    return {
        "loss_sum": loss * n,
        "correct": jnp.sum(jnp.argmax(logits, -1) == classes).astype(jnp.float32),
        "count": jnp.asarray(n, jnp.float32),
        "bad": (~jnp.isfinite(loss)).astype(jnp.float32),
    }


def batch_gradients(apply_fn, label_smoothing: float, aux_weight: float):
    """`gradients(params, batch_stats, batch, key) -> (grads, new batch_stats, batch_sums)` of
    one training-mode pass over `batch` with dropout key `key`."""

    def gradients(params, batch_stats, batch, key):
        def loss_fn(params):
            outputs, new_model_state = apply_fn(
                {"params": params, "batch_stats": batch_stats},
                batch["image"],
                train=True,
                rngs={"dropout": key},
                mutable=["batch_stats"],
            )
            logits, aux = split_outputs(outputs)
            loss = jnp.mean(cross_entropy(logits, batch["label"], label_smoothing))
            for a in aux:  # the papers weight each auxiliary classifier's loss (GoogLeNet: 0.3)
                loss = loss + aux_weight * jnp.mean(cross_entropy(a, batch["label"], label_smoothing))
            return loss, (logits, new_model_state.get("batch_stats", batch_stats))

        (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        return grads, new_stats, batch_sums(loss, logits, batch["label"])

    return gradients


def make_train_step(
    label_smoothing: float = 0.0,
    aux_weight: float = 0.3,
    ema_decay: float = 0.0,
    ema_warmup: bool = True,
    grad_accum_steps: int = 1,
):
    """One optimizer step over the global batch; with `grad_accum_steps` k > 1, as k
    micro-batches whose gradients are averaged (cnn_jax/train/accumulate.py)."""

    def train_step(state: TrainState, batch: dict, metrics: dict):
        step_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        gradients = batch_gradients(state.apply_fn, label_smoothing, aux_weight)
        if grad_accum_steps > 1:
            grads, batch_stats, sums = accumulate_gradients(
                gradients, state.params, state.batch_stats, batch, step_key, grad_accum_steps, zero_batch_sums()
            )
        else:
            grads, batch_stats, sums = gradients(state.params, state.batch_stats, batch, step_key)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * state.control["lr_scale"], updates)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema
        if ema_decay > 0:
            ema = update_ema(
                ema, {"params": params, "batch_stats": batch_stats}, decay_at(state.step, ema_decay, ema_warmup)
            )
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, ema=ema
        )
        bad = sums["bad"] > 0
        new_metrics = {
            "loss_sum": metrics["loss_sum"] + sums["loss_sum"],
            "correct": metrics["correct"] + sums["correct"],
            "count": metrics["count"] + sums["count"],
            "steps": metrics["steps"] + 1,
            "first_bad_step": jnp.where(bad & (metrics["first_bad_step"] < 0), state.step, metrics["first_bad_step"]),
        }
        return new_state, new_metrics

    return train_step


def top_classes(logits, k: int = 5):
    """(N, k) class ids, best first (equal scores: the lower id first, as lax.top_k orders
    them); -1 fills the columns of a model with fewer than k classes."""
    ids = jax.lax.top_k(logits, min(k, logits.shape[-1]))[1].astype(jnp.int32)
    missing = k - ids.shape[-1]
    return jnp.pad(ids, ((0, 0), (0, missing)), constant_values=-1) if missing else ids


def make_eval_step(logits_fn=None, per_example: bool = False):
    """`logits_fn(state, images)` defaults to one inference pass; eval protocols replace it.
    With `per_example`, the step also returns each example's top-5 classes, label, `index` and
    mask. Top-1 and top-5 are counted from those same classes, so a predictions file agrees
    exactly with the summed metrics."""

    def default_logits(state, images):
        return state.apply_fn(eval_variables(state), images, train=False)

    logits_fn = logits_fn or default_logits

    def eval_step(state: TrainState, batch: dict, metrics: dict):
        logits = logits_fn(state, batch["image"]).astype(jnp.float32)
        mask, labels = batch["mask"], batch["label"]
        top5 = top_classes(logits)
        sums = {
            "loss_sum": metrics["loss_sum"] + jnp.sum(cross_entropy(logits, labels) * mask),
            "top1": metrics["top1"] + jnp.sum((top5[:, 0] == labels) * mask),
            "top5": metrics["top5"] + jnp.sum(jnp.any(top5 == labels[:, None], axis=-1) * mask),
            "count": metrics["count"] + jnp.sum(mask),
        }
        if not per_example:
            return sums
        return sums, {"top5": top5, "label": labels, "index": batch["index"], "mask": mask}

    return eval_step
