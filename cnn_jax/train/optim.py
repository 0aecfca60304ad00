"""Optimisers and learning-rate schedules from the config (optax)."""

import jax
import jax.numpy as jnp
import optax

from cnn_jax.errors import UserError, did_you_mean

SCHEDULES = ("constant", "step", "cosine", "exponential", "plateau")
OPTIMIZERS = ("sgd", "rmsprop", "adamw")


def base_learning_rate(config) -> float:
    """`optimizer.lr`, or with `optimizer.lr_reference_batch` set the linear scaling rule of
    Goyal et al. 2017: lr is quoted per that batch, so the global batch gets lr * batch / it."""
    lr, reference = float(config.optimizer.lr), config.optimizer.get("lr_reference_batch", 0)
    if not reference:
        return lr
    if reference < 0:
        raise UserError(f"optimizer.lr_reference_batch must be a positive batch size or 0 (off), not {reference}.")
    return lr * int(config.batch_size) / int(reference)


def learning_rate_schedule(config, steps_per_epoch: int, total_steps: int) -> optax.Schedule:
    """Base schedule times linear warmup. `plateau` is constant here: the loop scales it
    by the state's `lr_scale`, which it lowers when validation top-1 stops improving."""
    s, base = config.schedule, base_learning_rate(config)
    if s.name not in SCHEDULES:
        raise UserError(
            f"Unknown schedule {s.name!r}{did_you_mean(s.name, SCHEDULES)}; use one of {', '.join(SCHEDULES)}."
        )
    if s.name == "step":
        boundaries = {int(round(e * steps_per_epoch)): float(s.factor) for e in s.boundaries_epochs}
        main = optax.piecewise_constant_schedule(base, boundaries)
    elif s.name == "cosine":
        main = optax.cosine_decay_schedule(base, max(total_steps, 1), alpha=float(s.end_lr_fraction))
    elif s.name == "exponential":
        every = max(1, int(round(s.decay_every_epochs * steps_per_epoch)))
        main = optax.exponential_decay(base, every, float(s.factor), staircase=True)
    else:
        main = optax.constant_schedule(base)
    warmup = int(round(float(s.warmup_epochs) * steps_per_epoch))
    if warmup <= 0:
        return main
    return lambda step: main(step) * jnp.minimum(1.0, (step + 1) / warmup)


def decay_mask(kind: str):
    """Which parameters weight decay applies to: all, or kernels only (no biases, BN)."""
    if kind == "all":
        return None
    if kind == "kernels":
        return lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    raise UserError(f"optimizer.weight_decay_mask must be 'all' or 'kernels', not {kind!r}.")


def make_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    o = config.optimizer
    if o.name not in OPTIMIZERS:
        raise UserError(
            f"Unknown optimizer {o.name!r}{did_you_mean(o.name, OPTIMIZERS)}; use one of {', '.join(OPTIMIZERS)}."
        )
    chain = []
    if o.clip_norm > 0:
        chain.append(optax.clip_by_global_norm(float(o.clip_norm)))
    wd, mask = float(o.weight_decay), decay_mask(o.weight_decay_mask)
    if o.name != "adamw" and wd > 0:
        # The papers' L2: wd * w joins the gradient before momentum (Caffe, cuda-convnet).
        chain.append(optax.add_decayed_weights(wd, mask))
    if o.name == "sgd":
        chain.append(optax.sgd(schedule, momentum=float(o.momentum) or None, nesterov=bool(o.nesterov)))
    elif o.name == "rmsprop":
        # optax applies the rate before the momentum trace, as TF v1's RMSPropOptimizer:
        # ms = rho ms + (1 - rho) g^2; mom = m mom + lr g / sqrt(ms + eps); w -= mom.
        # TF starts ms at 1 (rmsprop_initial_scale=1), which damps the first steps.
        chain.append(
            optax.rmsprop(
                schedule,
                decay=float(o.rho),
                eps=float(o.eps),
                eps_in_sqrt=True,
                initial_scale=float(o.get("rmsprop_initial_scale", 0.0)),
                momentum=float(o.momentum) or None,
                nesterov=bool(o.nesterov),
            )
        )
    else:
        chain.append(
            optax.adamw(schedule, b1=float(o.b1), b2=float(o.b2), eps=float(o.eps), weight_decay=wd, mask=mask)
        )
    return optax.chain(*chain)
