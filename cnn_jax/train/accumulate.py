"""Gradient accumulation: one optimizer step of the global batch computed as `grad_accum_steps`
micro-batches, one after the other inside the jitted step, so that a paper's batch fits on
fewer devices.

The gradients of the micro-batches' mean losses are averaged, which for a network without
BatchNorm is the gradient of the whole batch's mean loss. BatchNorm sees one micro-batch at a
time: its statistics are the micro-batch's (ghost BatchNorm of that size) and its running
averages are updated once per micro-batch, in order. Each micro-batch draws its own dropout
masks from the step's key folded with the micro-batch's index.
"""

import jax
import jax.numpy as jnp

from cnn_jax.errors import UserError


def steps_of(config) -> int:
    """A config's grad_accum_steps; 1 for a config written before the key existed."""
    return int(config.get("grad_accum_steps", 1))


def micro_batch_size(batch_size: int, grad_accum_steps: int) -> int:
    """The examples one forward pass sees: batch_size / grad_accum_steps."""
    if grad_accum_steps < 1:
        raise UserError(f"grad_accum_steps must be a whole number of at least 1, not {grad_accum_steps}.")
    if batch_size % grad_accum_steps:
        raise UserError(
            f"batch_size {batch_size} is not divisible by grad_accum_steps {grad_accum_steps}; "
            "set --config.grad_accum_steps to a divisor of batch_size."
        )
    return batch_size // grad_accum_steps


def check_micro_batch_divisible(batch_size: int, grad_accum_steps: int, devices: int) -> None:
    """Every device takes an equal share of every micro-batch."""
    micro = micro_batch_size(batch_size, grad_accum_steps)
    if grad_accum_steps > 1 and micro % devices:
        raise UserError(
            f"The micro-batch of {micro} examples (batch_size {batch_size} / grad_accum_steps {grad_accum_steps}) "
            f"is not divisible by the {devices} devices; set --config.batch_size to a multiple of "
            f"{grad_accum_steps * devices} or lower --config.grad_accum_steps."
        )


def check_bn_groups(batch_size: int, grad_accum_steps: int, group_size: int) -> None:
    """Ghost BatchNorm's groups are cut from each micro-batch, the batch BatchNorm sees."""
    micro = micro_batch_size(batch_size, grad_accum_steps)
    if group_size and micro % group_size:
        raise UserError(
            f"The micro-batch of {micro} examples (batch_size {batch_size} / grad_accum_steps {grad_accum_steps}) "
            f"is not divisible by bn_group_size {group_size}; pick a group size that divides it."
        )


def micro_batches(batch: dict, k: int) -> dict:
    """(B, ...) -> (k, B/k, ...), micro-batch j holding examples j, j+k, j+2k, ...

    Interleaved rather than consecutive because the global batch is sharded on its first axis:
    a device holds a contiguous block of B/D examples, and every k-th example of the batch takes
    B/(kD) of each device's own examples for every micro-batch. The reshape to (B/k, k) splits
    each device's block in place and the transpose is local, so no example moves between
    devices (consecutive micro-batches would each lie on D/k devices and need an all-to-all).
    The micro-batches are also the same for any device count, as ghost BatchNorm's groups are."""
    return jax.tree.map(lambda x: jnp.swapaxes(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 0, 1), batch)


def accumulate_gradients(gradients, params, batch_stats, batch: dict, key, k: int, zero_sums: dict) -> tuple:
    """(mean gradient, batch_stats after the k micro-batches, summed metric sums) of one step.

    `gradients(params, batch_stats, micro_batch, key) -> (grads, batch_stats, sums)` is one
    micro-batch's pass; `sums` are additive metric sums shaped like `zero_sums`. A scan keeps
    one micro-batch's activations alive at a time."""

    def one_micro_batch(carry, indexed):
        grad_sum, stats, sums = carry
        index, micro = indexed
        grads, stats, micro_sums = gradients(params, stats, micro, jax.random.fold_in(key, index))
        return (_add(grad_sum, grads), stats, _add(sums, micro_sums)), None

    carry = (jax.tree.map(jnp.zeros_like, params), batch_stats, zero_sums)
    (grad_sum, batch_stats, sums), _ = jax.lax.scan(one_micro_batch, carry, (jnp.arange(k), micro_batches(batch, k)))
    return jax.tree.map(lambda g: g / k, grad_sum), batch_stats, sums


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)
