"""Ghost BatchNorm (cnn_jax/layers/batchnorm.py): batch statistics over groups of examples,
the same variables as flax's BatchNorm, one switch for every model."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.layers.batchnorm import BatchNorm
from cnn_jax.models.resnet import ResNet

X = jax.random.normal(jax.random.key(0), (8, 3, 3, 4)) * 3.0 + 1.0


def _train(module, variables, x):
    y, updated = module.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    return np.asarray(y), jax.tree.map(np.asarray, updated["batch_stats"])


@pytest.fixture(scope="module")
def variables():
    v = nn.BatchNorm(momentum=0.9).init(jax.random.key(1), X, use_running_average=False)
    # Non-trivial scale and bias, so that the comparisons cover them.
    return {"params": {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0) - 1.5}, "batch_stats": v["batch_stats"]}


@pytest.mark.parametrize("group", [0, 8])
def test_one_group_is_flax_batchnorm(variables, group):
    y0, s0 = _train(nn.BatchNorm(momentum=0.9), variables, X)
    y1, s1 = _train(BatchNorm(momentum=0.9, group_size=group), variables, X)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(s1["mean"], s0["mean"])
    np.testing.assert_array_equal(s1["var"], s0["var"])


def test_two_groups_normalise_each_half_by_its_own_statistics(variables):
    y, stats = _train(BatchNorm(momentum=0.9, group_size=4), variables, X)
    x = np.asarray(X, np.float64)
    expected, means, variances = [], [], []
    for half in (x[:4], x[4:]):
        mean, var = half.mean((0, 1, 2)), half.var((0, 1, 2))
        expected.append((half - mean) / np.sqrt(var + 1e-5) * np.arange(1.0, 5.0) + np.arange(4.0) - 1.5)
        means.append(mean)
        variances.append(var)
    np.testing.assert_allclose(y, np.concatenate(expected), atol=1e-5)
    # The running averages (mean 0, var 1 before) take the mean of the two groups' statistics.
    np.testing.assert_allclose(stats["mean"], 0.1 * np.mean(means, 0), atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * np.mean(variances, 0), atol=1e-6)
    # ...which is not what one group of 8 gives: the halves' spread is left out of the variance.
    assert np.max(np.abs(stats["var"] - (0.9 + 0.1 * x.var((0, 1, 2))))) > 1e-3


def test_inference_ignores_the_groups(variables):
    bn = BatchNorm(momentum=0.9, group_size=4)
    y = bn.apply(variables, X[:3], use_running_average=True)  # 3 examples: no grouping at inference
    np.testing.assert_array_equal(
        np.asarray(y), np.asarray(nn.BatchNorm().apply(variables, X[:3], use_running_average=True))
    )


def test_batch_not_divisible_by_the_group_size(variables):
    with pytest.raises(UserError, match="batch of 8 examples is not divisible by bn_group_size 3") as e:
        _train(BatchNorm(group_size=3), variables, X)
    assert str(e.value).endswith(".")  # one sentence (JAX adds a traceback note after it)


def _shapes(tree):
    return jax.tree.map(lambda a: a.shape, tree)


@pytest.mark.parametrize(
    "name", ["resnet20", "mobilenet_v1", "densenet121", "xception", "inception_v3", "inception_resnet_v2", "vgg11_bn"]
)
def test_every_bn_model_takes_the_switch_with_the_same_variables(name):
    # Shapes only (jax.eval_shape): init, and a grouped training pass over a batch of 4.
    spec = models.registry.get_spec(name)
    size = (spec.input_size, spec.input_size, spec.in_channels)
    plain = models.create_model(name)
    ghost = plain.clone(bn_group_size=2)
    init = lambda m: jax.eval_shape(lambda x: m.init(jax.random.key(0), x, train=True), jnp.zeros((1, *size)))
    variables = init(plain)
    assert _shapes(init(ghost)) == _shapes(variables)
    out, updated = jax.eval_shape(
        lambda v, x: ghost.apply(v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}),
        variables,
        jnp.zeros((4, *size)),
    )
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (4, spec.num_classes)
    assert _shapes(updated["batch_stats"]) == _shapes(variables["batch_stats"])


def test_a_model_with_ghost_batchnorm_normalises_each_group_separately():
    # A small CIFAR ResNet in training mode: a batch of 4 with groups of 2 gives each pair the
    # outputs the pair alone gives with ordinary BatchNorm.
    x = jax.random.normal(jax.random.key(2), (4, 8, 8, 3))
    plain = ResNet(stages=(1, 1), widths=(4, 8), block="basic", num_classes=5, stem="cifar", shortcut="A")
    variables = jax.jit(lambda x: plain.init(jax.random.key(0), x, train=True))(x[:2])

    def forward(model):
        return jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[0])

    out = np.asarray(forward(plain.clone(bn_group_size=2))(variables, x))
    pairs = [np.asarray(forward(plain)(variables, x[i : i + 2])) for i in (0, 2)]
    np.testing.assert_allclose(out, np.concatenate(pairs), atol=1e-4)
    assert np.max(np.abs(out - np.asarray(forward(plain)(variables, x)))) > 1e-3


# --- the config switch ----------------------------------------------------------------------
def _error(capsys, args) -> str:
    from conftest import run_cli

    code, _, err = run_cli(args, capsys)
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1, err
    return lines[0]


def test_the_switch_refuses_a_model_without_batchnorm_and_a_batch_it_does_not_divide(tmp_path, data_dir, capsys):
    lenet = ["train", "--config", "configs/lenet5.py", "--num-devices", "1"]
    msg = _error(capsys, [*lenet, "--config.bn_group_size=4", "--workdir", tmp_path / "a"])
    assert "lenet5 has none" in msg and "bn_group_size=0" in msg
    r20 = ["train", "--config", "configs/resnet_cifar.py:depth=20,cpu", "--num-devices", "1"]
    msg = _error(capsys, [*r20, "--config.bn_group_size=5", "--workdir", tmp_path / "b"])
    assert "batch_size 64 is not divisible by bn_group_size 5" in msg


@pytest.mark.slow
def test_ghost_batchnorm_does_not_depend_on_the_device_count(tmp_path, data_dir, capsys):
    # ResNet-20, batch 32 in groups of 4: one device and 8 devices (4 examples each) train
    # alike, and differently from BatchNorm over the whole batch.
    from conftest import run_cli
    from helpers import final_params, max_abs_diff, train_losses

    common = [
        "train",
        "--config",
        "configs/resnet_cifar.py:depth=20,cpu",
        "--config.batch_size=32",
        "--config.num_train_steps=3",
        "--config.log_every_steps=1",
        "--config.optimizer.lr=0.01",
    ]
    runs = {
        "one": ["--num-devices", "1", "--config.bn_group_size=4"],
        "eight": ["--config.bn_group_size=4"],
        "global": ["--num-devices", "1"],
    }
    for name, extra in runs.items():
        assert run_cli([*common, *extra, "--workdir", tmp_path / name], capsys)[0] == 0
    one, eight, whole = (train_losses(tmp_path / n) for n in runs)
    np.testing.assert_allclose([one[s] for s in (1, 2, 3)], [eight[s] for s in (1, 2, 3)], rtol=1e-5)
    assert max_abs_diff(final_params(tmp_path / "one"), final_params(tmp_path / "eight")) < 1e-4
    assert abs(one[1] - whole[1]) > 1e-4
