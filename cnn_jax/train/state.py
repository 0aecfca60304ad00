"""The training state: everything a checkpoint must hold to resume exactly."""

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from cnn_jax.train.ema import init_ema


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array  # base key; step k uses fold_in(rng, k)
    control: dict  # host-steered scalars: lr_scale, plateau best and patience count
    ema: dict  # moving average of params and batch_stats (cnn_jax/train/ema.py); {} = off
    apply_fn: Callable = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


# The initial state is drawn once, and XLA's CPU backend spends most of its compile time
# optimising the random-number kernels. At level 1 it compiles markedly faster and draws
# bitwise the same weights; level 0 rounds some differently (figures: docs/performance.md).
LIGHTLY_OPTIMISED_ON_CPU = {"xla_backend_optimization_level": 1}


def init_program(fn: Callable, out_shardings) -> Callable:
    """`fn` (random key -> initial state) as the program that draws the initial state."""
    options = LIGHTLY_OPTIMISED_ON_CPU if jax.default_backend() == "cpu" else None
    return jax.jit(fn, out_shardings=out_shardings, compiler_options=options)


def initial_control() -> dict:
    return {
        "lr_scale": jnp.ones((), jnp.float32),
        "best_top1": jnp.full((), -1.0, jnp.float32),
        "bad_evals": jnp.zeros((), jnp.int32),
    }


def fresh_batch_stats(batch_stats):
    """BatchNorm's initial running statistics (mean 0, variance 1): a training-mode init has
    already averaged its dummy batch into them."""

    def reset(path, x):
        return jnp.ones_like(x) if path[-1].key == "var" else jnp.zeros_like(x)

    return jax.tree_util.tree_map_with_path(reset, batch_stats)


def create_state(model, tx, rng, input_shape, ema_decay: float = 0.0) -> TrainState:
    init_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    # Initialised in training mode so that training-only parts (auxiliary heads) get parameters.
    variables = model.init(
        {"params": init_rng, "dropout": dropout_rng}, jnp.zeros(input_shape, jnp.float32), train=True
    )
    params, batch_stats = variables["params"], fresh_batch_stats(variables.get("batch_stats", {}))
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=tx.init(params),
        rng=jax.random.key_data(state_rng),
        control=initial_control(),
        ema=init_ema({"params": params, "batch_stats": batch_stats}, ema_decay > 0),
        apply_fn=model.apply,
        tx=tx,
    )
