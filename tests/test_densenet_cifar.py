"""DenseNet / DenseNet-BC for CIFAR (Huang et al. 2017, Table 2): the reference code's
parameter counts, MACs, any input size and channel count, and configs/densenet_cifar.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_configs import DESIGN_KEYS, RECIPE_KEYS, get, load

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.models.densenet_cifar import DenseNetCifar, conv_init, layers_per_block
from cnn_jax.models.registry import reference_numbers
from cnn_jax.report.summary import summarize

# The totals of the authors' densenet.lua built for CIFAR-10 (10 classes, RGB 32x32).
PARAMS = {
    "densenet40_k12": 1_019_722,
    "densenet100_k12": 6_979_642,
    "densenet_bc100_k12": 769_162,
    "densenet_bc250_k24": 15_324_406,
    "densenet_bc190_k40": 25_624_430,
}
ARGS = {
    "L=40,k=12": "densenet40_k12",
    "L=100,k=12": "densenet100_k12",
    "bc,L=100,k=12": "densenet_bc100_k12",
    "bc,L=250,k=24": "densenet_bc250_k24",
    "bc,L=190,k=40": "densenet_bc190_k40",
    "": "densenet40_k12",
    "bc": "densenet_bc100_k12",
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_params_exact_and_macs_equal_the_reference(name):
    s = summarize(models.create_model(name), (1, 32, 32, 3))  # under jax.eval_shape
    ref = reference_numbers()[name]
    assert s.total_params == PARAMS[name] == ref["params_exact"]
    assert s.total_macs == ref["macs"] and s.output_shape == (1, 10)
    assert (ref["input_size"], ref["in_channels"], ref["num_classes"]) == (32, 3, 10)


def test_densenet40_macs_by_hand():
    # Stem 3x3 3->16 at 32x32; 12 layers of 3x3 convs c->12 per block with c = c0 + 12i; 1x1
    # transitions c->c at 32x32 and 16x16 (before their pooling); fc 448->10.
    def block(c0, side):
        return side * side * 9 * 12 * sum(c0 + 12 * i for i in range(12))

    macs = (
        32 * 32 * 27 * 16
        + block(16, 32)
        + 32 * 32 * 160 * 160
        + block(160, 16)
        + 16 * 16 * 304 * 304
        + block(304, 8)
        + 448 * 10
    )
    assert macs == 264_812_928 == reference_numbers()["densenet40_k12"]["macs"]


def test_depth_must_fit_the_block_structure():
    assert (layers_per_block(40, False), layers_per_block(100, True), layers_per_block(190, True)) == (12, 16, 31)
    with pytest.raises(ValueError, match="6n\\+4"):
        layers_per_block(43, True)


def test_grayscale_28x28():
    # Global average pooling takes 28 -> 14 -> 7; one input channel and 7 classes change only the
    # stem (9*16 weights per input channel) and the fc. (The slow suite trains this network's
    # `cpu` config on the one-channel digits: tests/test_configs.py.)
    model = models.create_model("densenet40_k12", num_classes=7)
    x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(1), x)
    count = sum(p.size for p in jax.tree.leaves(variables["params"]))
    assert count == PARAMS["densenet40_k12"] - 2 * 9 * 16 - 3 * (448 + 1)
    assert jax.eval_shape(model.apply, variables, x).shape == (2, 7)


def test_tiny_densenet_forward_and_dropout():
    # DenseNet-BC with one layer per block on 28x28x1: drop_rate 0.2 (the paper's setting without
    # augmentation) adds no parameters and changes training outputs.
    model = DenseNetCifar(depth=10, growth_rate=4, bc=True, num_classes=7, drop_rate=0.2)
    x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    @jax.jit
    def outputs(variables):
        train = lambda m: m.apply(
            variables, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"]
        )[0]
        return train(model), train(model.clone(drop_rate=0.0))

    dropped, kept = map(np.asarray, outputs(variables))
    assert dropped.shape == (2, 7) and np.isfinite(dropped).all() and not np.allclose(dropped, kept)


def test_conv_init_is_he_normal_over_fan_out():
    w = np.asarray(conv_init(jax.random.key(0), (1, 1, 304, 304)))
    assert w.shape == (1, 1, 304, 304) and abs(w.mean()) < 0.02 * w.std()
    assert abs(w.std() / math.sqrt(2 / 304) - 1) < 0.01  # 92k draws: the sample std is within 0.3%
    w3 = np.asarray(conv_init(jax.random.key(1), (3, 3, 100, 12)))
    assert abs(w3.std() / math.sqrt(2 / (9 * 12)) - 1) < 0.05


def test_init_follows_the_reference():
    variables = jax.eval_shape(
        lambda: models.create_model("densenet_bc100_k12").init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    )
    params = variables["params"]
    assert "bias" not in params["stem"] and "bias" not in params["block1_layer1"]["unit1"]["conv"]
    assert params["block1_layer1"]["unit1"]["conv"]["kernel"].shape == (1, 1, 24, 48)  # stem 2k, bottleneck 4k
    assert params["transition1"]["conv"]["kernel"].shape == (1, 1, 216, 108)  # 24 + 16*12, halved
    assert params["fc"]["kernel"].shape == (342, 10) and params["fc"]["bias"].shape == (10,)


# --- configs/densenet_cifar.py -----------------------------------------------------------------
@pytest.mark.parametrize("arg,name", sorted(ARGS.items()))
def test_config_arguments_choose_the_table_2_networks(arg, name):
    module = load("densenet_cifar")
    full, cpu = module.get_config(arg), module.get_config(f"{arg},cpu" if arg else "cpu")
    assert full.model == cpu.model == name
    for key in DESIGN_KEYS:
        get(full, key)
    models.create_model(full.model, num_classes=10, **dict(full.model_kwargs))
    assert (full.dataset, full.eval_split, full.data.recipe, full.batch_size, full.num_epochs) == (
        "cifar10",
        "test",
        "cifar",
        64,
        300.0,
    )
    o = full.optimizer
    assert (o.name, o.lr, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.1, 0.9, True, 1e-4)
    assert full.schedule.name == "step" and full.schedule.boundaries_epochs == (150.0, 225.0)
    assert {k: get(cpu, k) for k in RECIPE_KEYS} == {k: get(full, k) for k in RECIPE_KEYS}
    assert (cpu.dataset, cpu.data.recipe, cpu.num_train_steps, cpu.batch_size) == ("digits", "digits", 4, 16)


@pytest.mark.parametrize("word,dataset", [("fashion", "fashion_mnist"), ("mnist", "mnist")])
def test_config_runs_the_recipe_on_a_grayscale_28x28_dataset(word, dataset):
    module = load("densenet_cifar")
    cifar, gray = module.get_config("bc"), module.get_config(f"bc,{word},epochs=40")
    assert (gray.model, gray.dataset, gray.data.image_size, gray.data.channels) == (
        "densenet_bc100_k12",
        dataset,
        28,
        1,
    )
    assert gray.num_epochs == 40.0 and gray.schedule.boundaries_epochs == (20.0, 30.0)  # 50% and 75%
    for key in ("data.recipe", "batch_size", "optimizer", "schedule.name"):
        assert get(gray, key) == get(cifar, key), key
    assert module.get_config(f"bc,{word},cpu").dataset == "digits"  # cpu wins


def test_config_quotes_the_papers_numbers():
    module = load("densenet_cifar")
    for name, paper in module.PAPER.items():
        ref = reference_numbers()[name]
        assert paper["top1"] == ref["paper_top1"] == round(100 - ref["paper_c10plus_error"], 2)
        assert f"{ref['paper_c10plus_error']:.2f}%" in module.__doc__
        if ref["paper_c10_error"] is not None:
            assert f"C10 {ref['paper_c10_error']:.2f}%" in module.__doc__


@pytest.mark.parametrize(
    "arg,allowed",
    [
        ("L=41", "3n\\+4"),
        ("bc,L=40,k=12", "Table 2"),
        ("bc,L=102", "6n\\+4"),
        ("L=40,k=13", "Table 2"),
        ("L=x", "whole number"),
        ("L", "needs a value"),
        ("epochs=0", "epochs=0"),
        ("fashion,mnist", "pass only one"),
        ("fashion=1", "bare word"),
        ("depth=40", "it takes L, bc, cpu, epochs, fashion, k, mnist"),
        ("bn", "did you mean"),
    ],
)
def test_bad_argument_is_one_sentence(arg, allowed):
    with pytest.raises(UserError, match=allowed) as e:
        load("densenet_cifar").get_config(arg)
    message = str(e.value)
    assert message.endswith(".") and "\n" not in message
    if "Table 2" in allowed or "n\\+4" in allowed:
        assert "bc,L=190,k=40" in message
