"""BatchNorm with optional "ghost" batch statistics (Hoffer et al. 2017).

Under `jit` over a mesh, flax's BatchNorm normalises over the global batch. Recipes
trained with PyTorch DDP (no SyncBatchNorm) or on one GPU per replica normalised over
each device's own examples instead, e.g. 32 per GPU in Goyal et al. 2017; `group_size`
reproduces that independently of how many devices run the job: in training, the batch
is cut into consecutive groups of `group_size` examples, each normalised by its own
mean and variance. The running averages take the mean of the groups' statistics, a
deterministic stand-in for DDP's keeping the statistics of replica 0.

`group_size=0` is flax's BatchNorm exactly (same helper calls, same arguments), and
the variables (params scale/bias, batch_stats mean/var) are the same in both modes.

bn_impl chooses how training-mode BatchNorm is computed when a model is traced: "flax" is
flax's own form, "sums" the CPU form in cnn_jax.cpu.batchnorm_sums (the same function with
a written-out backward pass). Inference, ghost groups and masks always take flax's path.
"""

import flax.linen as nn
import jax.numpy as jnp
from flax.linen import normalization as flax_norm

from cnn_jax.cpu.batchnorm_sums import normalize_from_sums
from cnn_jax.errors import UserError
from cnn_jax.layers.switch import TraceSwitch

# Chosen when a model is traced; "auto" resolves to "sums" on CPU (where it is the faster
# form, docs/performance.md), "flax" elsewhere.
SWITCH = TraceSwitch("bn_impl", ("flax", "sums"), on_cpu="sums")
IMPLS = SWITCH.choices
bn_impl, resolve = SWITCH.use, SWITCH.resolve


def group_batch(x, group_size: int):
    """(N, ...) -> (N // group_size, group_size, ...); consecutive examples share a group."""
    n = x.shape[0]
    if group_size <= 0 or n % group_size:
        raise UserError(
            f"The BatchNorm batch of {n} examples is not divisible by bn_group_size {group_size}; "
            "set --config.bn_group_size to a divisor of the per-step batch (or 0 for one group)."
        )
    return x.reshape(n // group_size, group_size, *x.shape[1:])


class BatchNorm(nn.BatchNorm):
    """flax.linen.BatchNorm plus `group_size` (0 = statistics over the whole batch)."""

    group_size: int = 0

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None, *, mask=None):
        use_running_average = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        # Initialisation sees a dummy batch whose statistics are discarded, so it need not
        # divide into groups; inference uses the running averages.
        grouped = bool(self.group_size) and not use_running_average and not self.is_initializing()
        if grouped and mask is not None:
            raise ValueError("BatchNorm(group_size=...) does not take a mask")
        feature_axes = flax_norm._canonicalize_axes(x.ndim, self.axis)
        feature_shape = [x.shape[ax] for ax in feature_axes]
        stats_dtype = jnp.float32 if self.force_float32_reductions else self.param_dtype
        ra_mean = self.variable("batch_stats", "mean", lambda s: jnp.zeros(s, stats_dtype), feature_shape)
        ra_var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, stats_dtype), feature_shape)
        # "sums" covers the common case: batch statistics over every axis but the last one.
        sums_case = (
            not grouped
            and not use_running_average
            and mask is None
            and self.axis_name is None
            and self.use_fast_variance
            and self.use_scale
            and self.use_bias
            and feature_axes == (x.ndim - 1,)
        )
        if SWITCH.current() == "sums" and sums_case:
            return self._from_sums(x, ra_mean, ra_var)
        xs = group_batch(x, self.group_size) if grouped else x
        if grouped:  # the new leading axis indexes the groups: neither reduced nor a feature axis
            feature_axes = tuple(ax + 1 for ax in feature_axes)
            reduction_axes = tuple(i for i in range(1, xs.ndim) if i not in feature_axes)
        else:
            reduction_axes = tuple(i for i in range(xs.ndim) if i not in feature_axes)
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
            if not self.force_float32_reductions:
                mean, var = jnp.asarray(mean, self.param_dtype), jnp.asarray(var, self.param_dtype)
        else:
            mean, var = flax_norm._compute_stats(
                xs,
                reduction_axes,
                dtype=self.dtype,
                axis_name=self.axis_name if not self.is_initializing() else None,
                axis_index_groups=self.axis_index_groups,
                use_fast_variance=self.use_fast_variance,
                mask=mask,
                force_float32_reductions=self.force_float32_reductions,
            )
            if not self.is_initializing():
                batch_mean, batch_var = (mean.mean(0), var.mean(0)) if grouped else (mean, var)
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * batch_mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * batch_var
        y = flax_norm._normalize(
            self,
            xs,
            mean,
            var,
            reduction_axes,
            feature_axes,
            self.dtype,
            self.param_dtype,
            self.epsilon,
            self.use_bias,
            self.use_scale,
            self.bias_init,
            self.scale_init,
            self.force_float32_reductions,
        )
        return y.reshape(x.shape)

    def _from_sums(self, x, ra_mean, ra_var):
        """Training-mode BatchNorm over every axis but the last (bn_impl "sums")."""
        c = x.shape[-1]
        xf = x.astype(jnp.promote_types(x.dtype, jnp.float32) if self.force_float32_reductions else x.dtype)
        scale = self.param("scale", self.scale_init, (c,), self.param_dtype)
        bias = self.param("bias", self.bias_init, (c,), self.param_dtype)
        y, mean, var = normalize_from_sums(xf, scale.astype(xf.dtype), bias.astype(xf.dtype), self.epsilon)
        if not self.is_initializing():
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return jnp.asarray(y, flax_norm.canonicalize_dtype(x, scale, bias, dtype=self.dtype))
