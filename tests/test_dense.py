"""dense_impl "explicit" (cnn_jax/layers/dense.py): bfloat16 dense layers whose weight gradient
is x^T g in the kernel's layout; the same numbers as JAX's own transpose, float32 untouched."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.cpu import gemm
from cnn_jax.layers import dense


def _dense_and_loss(dtype):
    layer = dense.Dense(16, dtype=dtype)
    x = jax.random.normal(jax.random.key(0), (6, 5, 24)).astype(dtype)  # 3-D: flattened inside
    variables = layer.init(jax.random.key(1), x)
    loss = lambda v, x: jnp.sum(jnp.sin(layer.apply(v, x).astype(jnp.float32)))
    return jax.jit(jax.value_and_grad(loss, (0, 1))), variables, x


def _under(impl, fn, *args):
    with dense.SWITCH.use(impl):
        return fn(*args)


def test_the_explicit_vjp_is_the_product_rule():
    # float32 operands straight into `gemm.matmul`, against lax's dot and its transpose.
    x = jax.random.normal(jax.random.key(0), (7, 24))
    w = jax.random.normal(jax.random.key(1), (24, 16))
    f = lambda mm: jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(mm(x, w))), (0, 1)))
    got, want = f(gemm.matmul)(x, w), f(lambda x, w: x @ w)(x, w)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


def test_bfloat16_layers_give_xlas_outputs_and_gradients():
    step, variables, x = _dense_and_loss(jnp.bfloat16)
    (loss_x, (dv_x, dx_x)) = _under("xla", step, variables, x)
    (loss_e, (dv_e, dx_e)) = _under("explicit", step, variables, x)
    assert float(loss_e) == pytest.approx(float(loss_x), rel=1e-2)
    # Each side accumulates in float32 and rounds once to bfloat16 (8 bits): one ulp apart at most.
    for got, want in zip(jax.tree.leaves((dv_e, dx_e)), jax.tree.leaves((dv_x, dx_x))):
        got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=2**-7, atol=1e-2 * np.abs(want).max())
    assert dv_e["params"]["kernel"].dtype == jnp.float32  # the parameters' own dtype


def test_the_kernel_gradient_is_computed_in_the_kernels_layout():
    # XLA computes JAX's transposed form as a (16, 24) product and transposes it after the
    # bfloat16 rounding, element by element; the explicit VJP's product is (24, 16) already.
    step, variables, x = _dense_and_loss(jnp.bfloat16)
    text = _under("explicit", lambda: step.lower(variables, x).compile().as_text())
    products = re.findall(r"= \w+\[([\d,]+)\]\S* dot\(", text)
    assert "24,16" in products and "16,24" not in products, products
    assert not re.search(r"= \w+\[24,16\]\S* transpose\(", text)


def test_float32_layers_are_left_to_lax():
    step, variables, x = _dense_and_loss(jnp.float32)
    assert _under("explicit", lambda: step.lower(variables, x).as_text()) == _under(
        "xla", lambda: step.lower(variables, x).as_text()
    )


@pytest.mark.parametrize("platform,impl", [("cpu", "explicit"), ("gpu", "xla"), ("tpu", "xla")])
def test_auto_is_explicit_on_cpu_only(platform, impl):
    from cnn_jax.config import base_config, resolve_for_platform

    assert resolve_for_platform(base_config(), platform).dense_impl == impl


def test_an_unknown_choice_is_refused_in_one_sentence(tmp_path, data_dir, capsys):
    from helpers import assert_unknown_impl_refused

    from cnn_jax.errors import UserError

    with pytest.raises(UserError, match=r"^Unknown dense_impl 'fast'; use one of xla, explicit\.$"):
        dense.SWITCH.check("fast")
    assert_unknown_impl_refused(dense.SWITCH, tmp_path, capsys)  # and from the command line


def test_other_dot_products_pass_through():
    # A batched product is not a dense layer's: lax's own (a bfloat16 result), whichever the
    # choice; a dense one under "explicit" sums in float32 and then rounds.
    def product_types(a, b, dims):
        with dense.SWITCH.use("explicit"):
            text = jax.jit(lambda a, b: dense.dot_general(a, b, dims)).lower(a, b).as_text()
        return re.findall(r"stablehlo.dot_general.*-> tensor<[\dx]+x(\w+)>", text)

    batched = product_types(
        jnp.ones((2, 3, 4), jnp.bfloat16), jnp.ones((2, 4, 5), jnp.bfloat16), (((2,), (1,)), ((0,), (0,)))
    )
    plain = product_types(jnp.ones((3, 4), jnp.bfloat16), jnp.ones((4, 5), jnp.bfloat16), (((1,), (0,)), ((), ())))
    assert (batched, plain) == (["bf16"], ["f32"])
