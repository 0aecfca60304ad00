"""The initial state comes from a program compiled at XLA's CPU optimisation level 1
(cnn_jax/train/state.init_program), which compiles faster: the training loop
draws its weights with it, and they are bitwise the fully optimised program's."""

import jax
import numpy as np
from helpers import digits_config

from cnn_jax.train.loop import build_run
from cnn_jax.train.state import LIGHTLY_OPTIMISED_ON_CPU, create_state, init_program


def test_the_loop_draws_the_optimised_programs_weights_with_the_lighter_program():
    config = digits_config()  # LeNet-5 on digits
    config.num_train_steps = 1
    run = build_run(config, num_devices=1)
    draw = lambda r: create_state(run.model, run.state.tx, r, run.input_shape).params  # noqa: E731
    key = jax.random.key(int(run.config.seed))
    options = init_program(draw, None).trace(key)._params["compiler_options_kvs"]
    assert dict(options) == LIGHTLY_OPTIMISED_ON_CPU
    loop, optimised = (jax.tree.leaves(jax.device_get(p)) for p in (run.state.params, jax.jit(draw)(key)))
    # Level 0 would round about half of LeNet-5's weights differently (docs/performance.md).
    assert all(np.array_equal(a, b) for a, b in zip(loop, optimised, strict=True))
