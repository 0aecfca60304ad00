"""Every command that takes a model works for every model of the registry, at the smallest input
its training path takes: `summary` (the per-layer table), the model-dependent part of `explain`
(the layer list its Grad-CAM and activation defaults pick from, and the first convolution its
filter grid shows, traced on abstract weights), and `bench` at batch 1 for one step, with the
class count the registry gives the model (LeNet-5's RBF head has codes for 10 digits only).

Slow, run by `make test-all`: `bench` of every network but LeNet-5 and ResNet-20 (compiling a
full network's training step takes 45 s to 4 minutes on 2 shared cores), and `summary`/`explain`
of the networks whose initialisation alone takes seconds to trace (the DenseNets, the Inceptions,
torchvision's GoogLeNet, ResNet-101/110/152)."""

import json

import jax
import jax.numpy as jnp
import pytest
from conftest import run_cli

from cnn_jax import models
from cnn_jax.interpret import attribution as I

# The smallest inputs these networks train on (their `cpu` configs' sizes): a map left for the last
# max-pool (AlexNet, ZFNet, Inception-ResNet-v2) and the auxiliary heads' 5x5 and 17x17 maps
# (GoogLeNet, Inception-v3). 32 for the others.
SIZES = {"alexnet": 67, "alexnet_owt": 63, "zfnet": 47, "googlenet": 80, "inception_resnet_v2": 75, "inception_v3": 299}
FAST_BENCH = {"lenet5", "resnet20"}
SLOW_TRACE = ("densenet", "inception", "googlenet_tv", "resnet101", "resnet110", "resnet152")
slow = pytest.mark.slow


def size_of(name: str) -> int:
    return SIZES.get(name, 32)


def traced(names, heavy) -> list:
    return [pytest.param(n, id=n, marks=[slow] if heavy(n) else []) for n in names]


@pytest.mark.parametrize("name", traced(models.list_models(), lambda n: n.startswith(SLOW_TRACE)))
def test_summary_and_explains_layers_for_every_model(name, capsys):
    size = size_of(name)
    code, out, err = run_cli(["summary", name, "--input-size", size], capsys)
    assert code == 0, err
    assert any(line.startswith("total") for line in out.splitlines())
    spec, model = models.get_spec(name), models.create_model(name)
    shape = (1, size, size, spec.in_channels)
    variables = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, jnp.zeros(shape), train=False))
    layers = I.list_layers(model, variables, shape)
    assert I.feature_layers(layers), f"{name}: no feature map for gradcam/activations at {size}"
    path, kernel = I.first_conv(model, variables, shape)
    assert path and kernel.shape[2] == spec.in_channels


@pytest.mark.parametrize("name", traced(models.list_models(), lambda n: n not in FAST_BENCH))
def test_bench_runs_every_model_with_its_own_class_count(name, capsys):
    code, out, err = run_cli(
        [
            "bench",
            name,
            "--batch-size",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--input-size",
            size_of(name),
            "--num-devices",
            "1",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    r = json.loads(out.strip().splitlines()[-1])
    assert r["model"] == name and r["input_size"] == size_of(name) and r["train_img_per_s"] > 0
