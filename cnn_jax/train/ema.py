"""Polyak averaging: an exponential moving average (EMA) of the weights, which evaluation
uses instead of the weights themselves (Inception-v3 Sec. 8, Inception-v4, Xception).

The average covers the BatchNorm running statistics as well as the parameters, as
TF-slim's trainer (`ExponentialMovingAverage.apply(slim.get_model_variables())`, whose
variables include BN's moving mean and variance) and timm's ModelEma do: the statistics
the averaged network is evaluated with then come from the same stretch of training as
its weights, instead of from the last few hundred steps only.

The EMA is part of the TrainState: updated inside the jitted step (no host sync) and
checkpointed with the rest, so a resumed run continues the same average.
"""

import jax
import jax.numpy as jnp

WEIGHTS = ("params", "batch_stats")


def init_ema(variables: dict, enabled: bool) -> dict:
    """The average starts at the given weights (copies: the train step donates both);
    {} when averaging is off (nothing to store)."""
    return jax.tree.map(jnp.array, {k: variables[k] for k in WEIGHTS}) if enabled else {}


def decay_at(step, decay: float, warmup: bool):
    """TF's ExponentialMovingAverage(decay, num_updates=step): min(decay, (1 + t) / (10 + t)),
    so that the average forgets the random initialisation within the first few hundred steps
    instead of the ~1/(1 - decay) steps the constant decay needs."""
    d = jnp.asarray(decay, jnp.float32)
    if warmup:
        t = jnp.asarray(step, jnp.float32)
        d = jnp.minimum(d, (1.0 + t) / (10.0 + t))
    return d


def update_ema(ema: dict, variables: dict, decay) -> dict:
    """ema <- decay * ema + (1 - decay) * weights, leaf by leaf."""
    return jax.tree.map(
        lambda e, w: (decay * e + (1.0 - decay) * w).astype(e.dtype), ema, {k: variables[k] for k in WEIGHTS}
    )


def eval_variables(state) -> dict:
    """The variables evaluation applies: the average when the run keeps one."""
    if state.ema:
        return {k: state.ema[k] for k in WEIGHTS}
    return {"params": state.params, "batch_stats": state.batch_stats}


def eval_weights_name(state) -> str:
    """What results.json records under `eval_weights`."""
    return "ema" if state.ema else "raw"
