"""pool_impl "offsets" (cnn_jax/cpu/pool_offsets.py): max pooling whose backward pass scatters
by the window offsets saved in the forward pass computes JAX's function and gradient."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.layers import ConvBN, max_pool_ceil, pooling

# Inputs on a coarse grid, so that windows hold tied maxima.
X = jnp.round(jax.random.normal(jax.random.key(0), (2, 13, 12, 5)) * 2) / 2

# (window, strides, padding) as the models use them: ResNet/DenseNet's stem, VGG, Inception
# and AlexNet ('VALID' 3x3/2), Xception ('SAME', asymmetric), GoogLeNet's 3x3/1 branch.
CASES = [
    ((3, 3), (2, 2), ((1, 1), (1, 1))),
    ((2, 2), (2, 2), "VALID"),
    ((3, 3), (2, 2), "VALID"),
    ((3, 3), (2, 2), "SAME"),
    ((3, 3), (1, 1), ((1, 1), (1, 1))),
    ((2, 3), (1, 2), ((0, 1), (2, 0))),
]


def _value_and_grad(impl, fn, x):
    out = jax.eval_shape(fn, x)
    cotangent = jax.random.normal(jax.random.key(1), out.shape, out.dtype)

    def value_and_grad(x):
        y, vjp = jax.vjp(fn, x)
        return y, vjp(cotangent)[0]

    with pooling.pool_impl(impl):
        return jax.jit(value_and_grad)(x)


@pytest.mark.parametrize("window,strides,padding", CASES)
def test_offsets_equal_jax_values_and_gradients(window, strides, padding):
    fn = lambda x: pooling.max_pool(x, window, strides, padding)
    y0, g0 = _value_and_grad("xla", fn, X)
    y1, g1 = _value_and_grad("offsets", fn, X)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(y0, nn.max_pool(X, window, strides, padding))
    # Which input gets each window's gradient is the same, so only the order of the sums
    # where windows overlap can differ.
    np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-6)
    assert np.count_nonzero(g1) == np.count_nonzero(g0) > 0


def test_a_tie_gives_the_whole_gradient_to_the_first_maximum_in_the_window():
    x = jnp.ones((1, 2, 2, 1))
    _, g = _value_and_grad("offsets", lambda x: pooling.max_pool(x, (2, 2), (2, 2)), x)
    # The cotangent is one random number; it lands on the top-left element alone.
    assert g[0, 0, 0, 0] != 0 and np.count_nonzero(g) == 1


def test_ceil_mode_pooling_and_bfloat16_keep_jax_results():
    fn = lambda x: max_pool_ceil(x, 3, 2)
    for x in (X, X.astype(jnp.bfloat16)):
        y0, g0 = _value_and_grad("xla", fn, x)
        y1, g1 = _value_and_grad("offsets", fn, x)
        assert y1.shape == y0.shape == (2, 6, 6, 5) and y1.dtype == g1.dtype == x.dtype
        np.testing.assert_array_equal(y1, y0)
        # XLA's bfloat16 gradient rounds after each overlapping window's share, ours once.
        np.testing.assert_allclose(np.asarray(g1, np.float32), np.asarray(g0, np.float32), rtol=2**-6, atol=1e-2)


@pytest.mark.parametrize("window,strides,padding", CASES)
def test_bfloat16_gradient_is_the_float32_sum_rounded_once(window, strides, padding):
    fn = lambda x: pooling.max_pool(x, window, strides, padding)
    x16 = (X * 1.37).astype(jnp.bfloat16)  # off the grid of halves, still with ties
    g16 = jax.random.normal(jax.random.key(1), jax.eval_shape(fn, x16).shape, jnp.bfloat16)
    value_and_grad = jax.jit(lambda x, g: (fn(x), jax.vjp(fn, x)[1](g)[0]))  # traced per dtype
    with pooling.pool_impl("offsets"):
        y16, grad16 = value_and_grad(x16, g16)
        y32, grad32 = value_and_grad(x16.astype(jnp.float32), g16.astype(jnp.float32))
    assert y16.dtype == grad16.dtype == jnp.bfloat16
    np.testing.assert_array_equal(y16.astype(jnp.float32), y32)
    np.testing.assert_array_equal(grad16, grad32.astype(jnp.bfloat16))
    assert np.count_nonzero(np.asarray(grad16, np.float32)) > 0


def test_the_gradient_needs_no_scatter_or_argmax_reduce_window():
    programs = {}
    for impl in pooling.IMPLS:  # a new function each time: jit caches traces by function
        fn = jax.jit(jax.grad(lambda x: jnp.sum(pooling.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))) ** 2)))
        with pooling.pool_impl(impl):
            programs[impl] = fn.lower(X).compile().as_text()
    # JAX's own gradient: an argmax as a reduce-window over values and indices, then a scatter.
    assert " scatter(" in programs["xla"]
    assert " scatter(" not in programs["offsets"] and "reduce-window(" not in programs["offsets"]


class Stem(nn.Module):
    """ResNet's stem and a head: convolution, BatchNorm, ReLU, 3x3/2 max pool."""

    @nn.compact
    def __call__(self, x):
        x = ConvBN(8, (7, 7), (2, 2), name="stem")(x, train=True)
        x = pooling.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        return nn.Dense(3)(x.mean((1, 2)))


def test_parameter_gradients_through_the_pool_match():
    x = jax.random.normal(jax.random.key(0), (4, 24, 24, 3))
    variables = Stem().init(jax.random.key(1), x)

    def loss(params):
        logits, _ = Stem().apply({**variables, "params": params}, x, mutable=["batch_stats"])
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0])

    results = {}
    for impl in pooling.IMPLS:
        with pooling.pool_impl(impl):
            results[impl] = jax.jit(jax.value_and_grad(loss))(variables["params"])
    np.testing.assert_allclose(results["offsets"][0], results["xla"][0], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(results["offsets"][1]), jax.tree.leaves(results["xla"][1])):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(b))))
    assert float(jnp.max(jnp.abs(results["xla"][1]["stem"]["conv"]["kernel"]))) > 0


def test_unknown_pool_impl_is_a_user_error(tmp_path, data_dir, capsys):
    from helpers import assert_unknown_impl_refused

    assert_unknown_impl_refused(pooling.SWITCH, tmp_path, capsys)


@pytest.mark.parametrize("platform,impl", [("cpu", "offsets"), ("gpu", "xla"), ("tpu", "xla")])
def test_auto_resolves_per_platform(platform, impl):
    from cnn_jax.config import base_config, resolve_for_platform

    assert resolve_for_platform(base_config(), platform).pool_impl == impl


def test_a_batch_sharded_over_8_devices_gives_the_same_gradient_without_communication():
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",))
    x = jnp.round(jax.random.normal(jax.random.key(3), (16, 9, 9, 4)) * 2) / 2
    grad = jax.grad(lambda x: jnp.sum(pooling.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))) ** 2))
    with pooling.pool_impl("offsets"):
        one = jax.jit(grad)(x)
        sharded = jax.jit(grad, out_shardings=NamedSharding(mesh, P("data")))
        x8 = jax.device_put(x, NamedSharding(mesh, P("data")))
        program = sharded.lower(x8).compile().as_text()
        eight = sharded(x8)
    np.testing.assert_array_equal(eight, one)
    # Pooling windows never cross examples, so each device works on its own two.
    assert "all-gather" not in program and "all-reduce" not in program and "all-to-all" not in program


def test_unbatched_input_pools_like_flax():
    x = X[0]
    with pooling.pool_impl("offsets"):
        y = pooling.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(y, nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1))))
