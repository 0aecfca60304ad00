"""conv_impl "onednn": convolutions as XLA FFI calls into oneDNN on the CPU.

Its numbers against XLA's are in tests/test_conv_gemm.py (every kernel/stride/padding case,
bfloat16, a whole MobileNet, a training trajectory); here: what the path is made of (the
shim built and cached, the calls in the program), that it repeats itself exactly, vmap,
a whole ResNet-20's gradients, and one-sentence refusals where it cannot run."""

import ctypes
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cnn_jax import models
from cnn_jax.cpu import onednn as conv_onednn
from cnn_jax.errors import UserError
from cnn_jax.layers import conv

needs_onednn = pytest.mark.skipif(
    conv_onednn.unavailable() is not None, reason=f"oneDNN cannot run here: {conv_onednn.unavailable()}"
)
NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, strides=(1, 1), padding="SAME", groups=1):
    dn = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    return conv.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn, feature_group_count=groups)


@needs_onednn
def test_each_convolution_becomes_three_ffi_calls():
    x, w3, w1 = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 4)), jnp.ones((1, 1, 4, 4))
    loss = lambda x, w3, w1: jnp.sum(_conv(_conv(x, w3), w1) ** 2)
    with conv.conv_backend("onednn"):
        text = jax.jit(jax.grad(loss, (0, 1, 2))).lower(x, w3, w1).as_text()
    for target in ("forward", "backward_data", "backward_weights"):
        assert text.count(f"cnn_jax_onednn_{target}") == 2  # the 3x3 and the 1x1
    assert "stablehlo.convolution" not in text and "dot_general" not in text


@needs_onednn
def test_bfloat16_outputs_and_input_gradients_come_from_onednn_as_bfloat16():
    # oneDNN rounds them once; a float32 result would cost an array and a conversion pass.
    x, w = jnp.ones((2, 8, 8, 4), jnp.bfloat16), jnp.ones((3, 3, 4, 4), jnp.bfloat16)
    loss = lambda x, w: jnp.sum(_conv(x, w).astype(jnp.float32) ** 2)
    with conv.conv_backend("onednn"):
        text = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).as_text()
    result = lambda target: re.search(rf"cnn_jax_onednn_{target}.*?-> tensor<[0-9x]+x(\w+)>", text).group(1)
    assert (result("forward"), result("backward_data"), result("backward_weights")) == ("bf16", "bf16", "f32")


@needs_onednn
@pytest.mark.parametrize("channels,groups,out,stride", [(8, 2, 6, 1), (8, 8, 8, 1), (8, 8, 16, 2), (6, 6, 6, 2)])
def test_grouped_and_depthwise_convolutions_equal_xla(channels, groups, out, stride):
    # MobileNet's and Xception's depthwise 3x3s (channel multiplier 1 and 2), AlexNet's groups.
    x = jax.random.normal(jax.random.key(0), (3, 11, 11, channels))
    w = jax.random.normal(jax.random.key(1), (3, 3, channels // groups, out)) * 0.3

    def loss(conv):
        def f(x, w):
            y = conv(
                x,
                w,
                (stride, stride),
                "SAME",
                dimension_numbers=lax.conv_dimension_numbers(x.shape, w.shape, NHWC),
                feature_group_count=groups,
            )
            return jnp.sum(jnp.sin(y))

        return jax.jit(jax.value_and_grad(f, (0, 1)))

    want = loss(lax.conv_general_dilated)(x, w)
    with conv.conv_backend("onednn"):
        step = loss(conv.conv_general_dilated)
        assert "cnn_jax_onednn_backward_weights" in step.lower(x, w).as_text()
        got = step(x, w)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


@needs_onednn
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_depthwise_convolutions_run_in_onednns_depthwise_kernels(capfd, dtype):
    # oneDNN's own dispatch gives a strided bfloat16 depthwise input gradient to a general
    # brgemm kernel, where MobileNet's run an order of magnitude slower than in jit_dw.
    x, w = jnp.ones((2, 14, 14, 24), dtype), jnp.ones((3, 3, 1, 24), dtype)

    def loss(x, w):
        y = _conv(x, w, (2, 2), groups=24)
        return jnp.sum(y.astype(jnp.float32) ** 2)

    with conv.conv_backend("onednn"):
        step = jax.jit(jax.grad(loss, (0, 1)))
        dnnl = ctypes.CDLL("libdnnl.so.3")  # the shim's, already loaded: found by its soname
        capfd.readouterr()
        dnnl.dnnl_set_verbose(1)
        try:
            jax.block_until_ready(step(x, w))
        finally:
            dnnl.dnnl_set_verbose(0)
    runs = [
        line.split(",exec,cpu,convolution,")[1].split(",")
        for line in capfd.readouterr().out.splitlines()
        if ",exec,cpu,convolution," in line
    ]
    kernels = {fields[1]: fields[0] for fields in runs}  # propagation kind -> implementation
    assert sorted(kernels) == ["backward_data", "backward_weights", "forward_training"], runs
    assert all("dw:" in kernel for kernel in kernels.values()), kernels


@needs_onednn
@pytest.mark.parametrize(
    "name",
    [
        "lenet5",
        "alexnet",
        "zfnet",
        "vgg11",
        "googlenet",
        "inception_v3",
        "inception_resnet_v2",
        "xception",
        "resnet18",
        "densenet121",
        "mobilenet_v1",
        "resnet20",
    ],
)
def test_every_convolution_of_a_training_step_goes_to_onednn(name):
    # One model per family, traced at its input size without compiling: a layer that calls
    # lax's convolution itself instead of going through layers.Conv would stay XLA's.
    spec = models.get_spec(name)
    model = models.create_model(name)
    image = jax.ShapeDtypeStruct((2, spec.input_size, spec.input_size, spec.in_channels), jnp.float32)
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = jax.eval_shape(lambda x: model.init(rngs, x, train=True), image)  # with aux heads

    def loss(variables, x):
        y, _ = model.apply(variables, x, train=True, mutable=["batch_stats"], rngs=rngs)
        return sum(jnp.sum(jnp.asarray(leaf, jnp.float32)) for leaf in jax.tree.leaves(y))

    with conv.conv_backend("onednn"):
        text = jax.jit(jax.grad(loss)).lower(variables, image).as_text()
    assert "stablehlo.convolution" not in text
    assert text.count("cnn_jax_onednn_backward_weights") >= 3


@needs_onednn
def test_same_inputs_give_bitwise_the_same_outputs_and_gradients():
    # Resuming a killed run must retrace the uninterrupted one exactly.
    x = jax.random.normal(jax.random.key(0), (4, 15, 15, 8))
    w = jax.random.normal(jax.random.key(1), (3, 3, 8, 16))
    with conv.conv_backend("onednn"):
        f = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(_conv(x, w, (2, 2)))), (0, 1)))
        first, second = f(x, w), f(x, w)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), first, second))


@needs_onednn
def test_vmap_over_the_ffi_call_matches_a_loop():
    xs = jax.random.normal(jax.random.key(0), (3, 2, 6, 6, 4))
    w = jax.random.normal(jax.random.key(1), (3, 3, 4, 5))
    with conv.conv_backend("onednn"):
        batched = jax.jit(jax.vmap(lambda x: _conv(x, w)))(xs)
    looped = jnp.stack([lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC) for x in xs])
    np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_a_batch_sharded_over_devices_is_convolved_where_it_lies():
    # 8 devices (conftest), the batch of 16 sharded over them: each device's oneDNN calls see
    # its 2 examples, and only the weight gradient is summed across devices. A plain custom
    # call would be all-gathered and run on all 16 examples on every device.
    mesh = jax.make_mesh((8,), ("data",))
    x = jax.device_put(jax.random.normal(jax.random.key(0), (16, 6, 6, 4)), NamedSharding(mesh, P("data")))
    w = jax.device_put(jax.random.normal(jax.random.key(1), (3, 3, 4, 5)), NamedSharding(mesh, P()))
    loss = lambda conv: jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1)))
    with conv.conv_backend("onednn"):
        compiled = loss(_conv).lower(x, w).compile()
    calls = re.findall(r"= f32\[([\d,]+)\][^=]*custom_call_target=\"cnn_jax_onednn_(\w+)\"", compiled.as_text())
    assert sorted(calls) == [("2,6,6,4", "backward_data"), ("2,6,6,5", "forward"), ("3,3,4,5", "backward_weights")]
    assert "all-gather" not in compiled.as_text() and compiled.as_text().count("all-reduce(") == 1
    dx, dw = compiled(x, w)
    want_dx, want_dw = loss(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC))(x, w)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-3)
    assert dx.sharding.spec == P("data")


@needs_onednn
def test_resnet20_training_gradients_match_xla():
    # Every 3x3 convolution of the CIFAR ResNet-20 (19 of them) through oneDNN, in training
    # mode (batch statistics), against XLA's convolutions.
    model = models.create_model("resnet20", num_classes=10)
    x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
    labels = jnp.arange(8) % 10
    variables = jax.jit(model.init)(jax.random.key(1), x)

    def loss(params):
        logits, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
        return jnp.mean(-jax.nn.log_softmax(logits)[jnp.arange(8), labels])

    results = {}
    for backend in ("xla", "onednn"):
        with conv.conv_backend(backend):
            step = jax.jit(jax.value_and_grad(loss))
            assert step.lower(variables["params"]).as_text().count("cnn_jax_onednn_forward") == (
                19 if backend == "onednn" else 0
            )
            results[backend] = step(variables["params"])
    np.testing.assert_allclose(results["onednn"][0], results["xla"][0], rtol=1e-5)
    for got, want in zip(jax.tree.leaves(results["onednn"][1]), jax.tree.leaves(results["xla"][1])):
        assert float(jnp.max(jnp.abs(got - want))) <= 1e-4 * float(jnp.max(jnp.abs(want))) + 1e-7


def test_the_shim_is_built_once_into_the_cache(tmp_path, monkeypatch):
    if conv_onednn.unavailable() is not None:
        pytest.skip(f"oneDNN cannot run here: {conv_onednn.unavailable()}")
    monkeypatch.setenv("CNN_JAX_NATIVE_CACHE", str(tmp_path))
    built = conv_onednn.build()
    assert built.parent == tmp_path and built.name.startswith("libcnn_jax_onednn-") and built.stat().st_size > 0
    stamp = built.stat().st_mtime_ns
    assert conv_onednn.build() == built and built.stat().st_mtime_ns == stamp  # cached, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no partial files left behind


@pytest.mark.parametrize(
    "compiler,reason", [("/nonexistent/g++", "no C++ compiler"), ("false", "compiling onednn_conv.cc failed")]
)
def test_a_shim_that_cannot_be_built_says_why(tmp_path, monkeypatch, compiler, reason):
    if conv_onednn.unavailable() is not None:
        pytest.skip(f"oneDNN cannot run here: {conv_onednn.unavailable()}")
    monkeypatch.setenv("CNN_JAX_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", compiler)
    with pytest.raises(conv_onednn.Unavailable, match=re.escape(reason)):
        conv_onednn.build()
    assert list(tmp_path.iterdir()) == []


def test_missing_onednn_falls_back_to_gemm_and_refuses_an_explicit_choice(monkeypatch):
    missing = conv_onednn.Unavailable("the package onednn-cpu-gomp is not installed; pip install onednn-cpu-gomp")
    monkeypatch.setattr(conv_onednn, "_load", lambda: missing)
    assert conv.resolve("auto", "cpu") == "gemm"
    with pytest.raises(UserError) as e:
        conv.resolve("onednn", "cpu")
    assert str(e.value) == (
        "conv_impl 'onednn' cannot run here: the package onednn-cpu-gomp is not installed; "
        "pip install onednn-cpu-gomp, or use conv_impl=gemm."
    )


def test_onednn_is_refused_off_the_cpu():
    assert conv.resolve("auto", "gpu") == "xla"
    with pytest.raises(UserError, match="runs on CPUs only"):
        conv.resolve("onednn", "gpu")


def test_cli_refuses_onednn_when_it_cannot_run(tmp_path, data_dir, capsys, monkeypatch):
    from conftest import run_cli

    monkeypatch.setattr(conv_onednn, "_load", lambda: conv_onednn.Unavailable("no C++ compiler was found"))
    code, _, err = run_cli(
        [
            "train",
            "--config",
            "configs/lenet5.py",
            "--config.conv_impl=onednn",
            "--config.num_train_steps=1",
            "--workdir",
            tmp_path / "w",
        ],
        capsys,
    )
    assert code == 2 and "conv_impl 'onednn' cannot run here: no C++ compiler was found" in err
    assert not (tmp_path / "w" / "config.json").exists()
