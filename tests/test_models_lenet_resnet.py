import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_checks import check_params_and_macs, output_shape

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.models import lenet

REFERENCED = [
    "lenet5",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_v1_5",
    "resnet101_v1_5",
    "resnet152_v1_5",
]


@pytest.mark.parametrize("name", REFERENCED)
def test_params_and_macs_equal_the_reference_exactly(name):
    check_params_and_macs(name)


# The CIFAR ResNets have no row in the architecture reference file; these are the totals of the
# paper's option-A networks (3x3 convs without bias, BN gamma/beta, 64->10 FC with bias),
# computed by hand for ResNet-20: 432+32 + 3*2*(2304+32) + (4608+64 + 5*(9216+64))
# + (18432+128 + 5*(36864+128)) + 650 = 269,722; each further block pair adds 194,432.
CIFAR_PARAMS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
}


@pytest.mark.parametrize("name,params", sorted(CIFAR_PARAMS.items()))
def test_cifar_resnet_params(name, params):
    assert models.model_info(name)["params"] == params


def test_v1_and_v1_5_differ_only_in_macs():
    v1, v15 = models.model_info("resnet50"), models.model_info("resnet50_v1_5")
    assert v1["params"] == v15["params"]
    assert v15["macs"] - v1["macs"] == 4_089_184_256 - 3_857_973_248


@pytest.mark.parametrize(
    "name,classes", [("resnet50", 1000), ("resnet18", 17), ("resnet20", 10), ("lenet5", 10), ("lenet5", 7)]
)
def test_output_shapes(name, classes):
    assert output_shape(name, classes).shape == (2, classes)


def test_bfloat16_compute_keeps_float32_params():
    model = models.create_model("resnet20", dtype=jnp.bfloat16)
    x = jnp.ones((2, 32, 32, 3))
    variables = model.init(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    logits = model.apply(variables, x)
    assert logits.dtype == jnp.float32 and logits.shape == (2, 10)


def test_lenet_c3_connection_table_is_the_papers():
    # Table I: 6 maps see 3 inputs, 9 see 4, one sees all 6 -> 60 input-map connections.
    assert sorted(len(t) for t in lenet.C3_TABLE) == [3] * 6 + [4] * 9 + [6]
    model = models.create_model("lenet5")
    x = jnp.zeros((1, 32, 32, 1))
    variables = model.init(jax.random.key(0), x)
    # Perturbing S2 map 5 must not change C3 map 0, which Table I connects to maps 0-2 only.
    c3 = lambda inp: lenet.PartialConv(lenet.C3_TABLE).apply({"params": variables["params"]["C3"]}, inp)
    base = jax.random.normal(jax.random.key(1), (1, 14, 14, 6))
    bumped = base.at[..., 5].add(1.0)
    diff = np.abs(np.asarray(c3(bumped) - c3(base))).max(axis=(0, 1, 2))
    assert diff[0] == 0.0 and diff[3] > 0  # map 3 sees {3,4,5}


def test_lenet_rbf_codes_are_distinct_bitmaps():
    codes = lenet.rbf_codes()
    assert codes.shape == (10, 84) and set(np.unique(codes)) == {-1.0, 1.0}
    distances = ((codes[:, None] - codes[None]) ** 2).sum(-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 0


def test_lenet_rbf_head_refuses_more_than_ten_classes():
    with pytest.raises(UserError, match="head='softmax'"):
        output_shape("lenet5", 12)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UserError, match="Unknown model 'resnet05'.*did you mean.*'resnet50'"):
        models.create_model("resnet05")
