"""torchvision state dicts in our flax models: where every tensor goes.

Without torch: synthetic state dicts, named and shaped by torchvision's rules (written
out here independently of `torch_maps`) and filled with random numbers, go through
`.safetensors` files; every tensor must land in exactly one of our variables with its
values, and hand-picked ones where torchvision's layout says. Random values also
stand in for BatchNorm statistics so that a misplaced one shows.

The same generators are checked against torchvision's own state dicts as the goldens in
tests/golden/ recorded them (tools/make_golden_logits.py; test_golden_logits.py compares
the logits). `.pth` files: test_torch_files.py; logits against torchvision itself:
test_torch_logits.py.
"""

import jax
import numpy as np
import pytest
from flax import traverse_util
from test_golden_logits import read_golden, torch_state

from cnn_jax.weights import torch_import as ti

RTOL = 1e-4


# ----------------------------------------------------------------------------- torchvision's names


def conv(name, cin, cout, k, bias=False):
    return {f"{name}.weight": (cout, cin, k, k), **({f"{name}.bias": (cout,)} if bias else {})}


def bn(name, c):
    return {f"{name}.{leaf}": (c,) for leaf in ("weight", "bias", "running_mean", "running_var")} | {
        f"{name}.num_batches_tracked": ()
    }


def linear(name, fin, fout):
    return {f"{name}.weight": (fout, fin), f"{name}.bias": (fout,)}


def resnet_keys(blocks, bottleneck, num_classes):
    keys, cin = conv("conv1", 3, 64, 7) | bn("bn1", 64), 64
    for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        cout = width * (4 if bottleneck else 1)
        for j in range(n):
            p = f"layer{i}.{j}"
            convs = (
                [(cin, width, 1), (width, width, 3), (width, cout, 1)]
                if bottleneck
                else [(cin, width, 3), (width, width, 3)]
            )
            for k, (a, b, size) in enumerate(convs, start=1):
                keys |= conv(f"{p}.conv{k}", a, b, size) | bn(f"{p}.bn{k}", b)
            if j == 0 and (i > 1 or cin != cout):
                keys |= conv(f"{p}.downsample.0", cin, cout, 1) | bn(f"{p}.downsample.1", cout)
            cin = cout
    return keys | linear("fc", cin, num_classes)


def densenet_keys(growth, stem, blocks, num_classes, legacy=False):
    """`legacy`: the published files' `norm.1` spelling of torchvision's `norm1`."""
    keys, c, dot = conv("features.conv0", 3, stem, 7) | bn("features.norm0", stem), stem, "." if legacy else ""
    for b, n in enumerate(blocks, start=1):
        for i in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            keys |= (
                bn(f"{p}.norm{dot}1", c)
                | conv(f"{p}.conv{dot}1", c, 4 * growth, 1)
                | bn(f"{p}.norm{dot}2", 4 * growth)
                | conv(f"{p}.conv{dot}2", 4 * growth, growth, 3)
            )
            c += growth
        if b < len(blocks):
            keys |= bn(f"features.transition{b}.norm", c) | conv(f"features.transition{b}.conv", c, c // 2, 1)
            c //= 2
    return keys | bn("features.norm5", c) | linear("classifier", c, num_classes)


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg_keys(config, batch_norm, fc, num_classes):
    keys, index, cin = {}, 0, 3
    for v in config:
        if v == "M":
            index += 1
            continue
        keys |= conv(f"features.{index}", cin, v, 3, bias=True)
        keys |= bn(f"features.{index + 1}", v) if batch_norm else {}
        index, cin = index + (3 if batch_norm else 2), v
    return (
        keys
        | linear("classifier.0", 512 * 7 * 7, fc)
        | linear("classifier.3", fc, fc)
        | linear("classifier.6", fc, num_classes)
    )


def alexnet_keys(fc, num_classes):
    keys = {}
    for index, (cin, cout, k) in zip(
        (0, 3, 6, 8, 10), ((3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3))
    ):
        keys |= conv(f"features.{index}", cin, cout, k, bias=True)
    return (
        keys
        | linear("classifier.1", 256 * 6 * 6, fc)
        | linear("classifier.4", fc, fc)
        | linear("classifier.6", fc, num_classes)
    )


GOOGLENET_ROWS = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)


def basic_conv(name, cin, cout, k):
    """torchvision's BasicConv2d: a bias-free conv and its BatchNorm."""
    return conv(f"{name}.conv", cin, cout, k) | bn(f"{name}.bn", cout)


def googlenet_keys(num_classes, aux=True):
    keys = basic_conv("conv1", 3, 64, 7) | basic_conv("conv2", 64, 64, 1) | basic_conv("conv3", 64, 192, 3)
    cin = 192
    for name, n1, r3, n3, r5, n5, proj in GOOGLENET_ROWS:
        p = f"inception{name}"
        keys |= (
            basic_conv(f"{p}.branch1", cin, n1, 1)
            | basic_conv(f"{p}.branch2.0", cin, r3, 1)
            | basic_conv(f"{p}.branch2.1", r3, n3, 3)
            | basic_conv(f"{p}.branch3.0", cin, r5, 1)
            | basic_conv(f"{p}.branch3.1", r5, n5, 3)  # torchvision's "5x5" is a 3x3
            | basic_conv(f"{p}.branch4.1", cin, proj, 1)
        )
        cin = n1 + n3 + n5 + proj
    for head, c in (("aux1", 512), ("aux2", 528)) if aux else ():
        keys |= (
            basic_conv(f"{head}.conv", c, 128, 1)
            | linear(f"{head}.fc1", 128 * 4 * 4, 1024)
            | linear(f"{head}.fc2", 1024, num_classes)
        )
    return keys | linear("fc", 1024, num_classes)


# (our model, torchvision key shapes, model kwargs); small FC layers keep VGG/AlexNet light.
CASES = {
    "resnet18": (lambda: resnet_keys((2, 2, 2, 2), False, 10), {}),
    "resnet50_v1_5": (lambda: resnet_keys((3, 4, 6, 3), True, 10), {}),
    "densenet121": (lambda: densenet_keys(32, 64, (6, 12, 24, 16), 10, legacy=True), {}),
    "vgg11": (lambda: vgg_keys(VGG11, False, 32, 10), {"fc_features": (32, 32)}),
    "vgg11_bn": (lambda: vgg_keys(VGG11, True, 32, 10), {"fc_features": (32, 32)}),
    "alexnet_owt": (lambda: alexnet_keys(32, 10), {"fc_features": (32, 32)}),
    "googlenet_tv": (lambda: googlenet_keys(10), {}),
}


def random_state(shapes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        k: (np.array(7, np.int64) if k.endswith("num_batches_tracked") else rng.standard_normal(s, np.float32))
        for k, s in shapes.items()
    }


def save_safetensors(state: dict, path) -> str:
    from safetensors.numpy import save_file

    save_file(state, str(path))
    return str(path)


def flat(variables) -> dict:
    return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(variables).items()}


def fingerprint(a) -> bytes:
    return np.sort(np.asarray(a, np.float32).ravel()).tobytes()


# ----------------------------------------------------------------------------- without torch


@pytest.mark.parametrize("model_name", sorted(CASES))
def test_every_tensor_lands_once_with_its_values(model_name, tmp_path):
    shapes, kwargs = CASES[model_name]
    state = random_state(shapes())
    module, variables = ti.load_torchvision_weights(
        model_name, save_safetensors(state, tmp_path / "w.safetensors"), **kwargs
    )
    ours = flat(variables)
    tensors = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert module.num_classes == 10 and len(ours) == len(tensors)
    # Random values are unique: each torch tensor's values are exactly one of our leaves'.
    where = {fingerprint(v): k for k, v in ours.items()}
    assert len(where) == len(ours)
    assert sorted(where[fingerprint(v)] for v in tensors.values()) == sorted(ours)


def test_resnet_tensors_go_where_torchvision_layout_says(tmp_path):
    state = random_state(CASES["resnet18"][0]())
    _, variables = ti.load_torchvision_weights("resnet18", state)
    ours = flat(variables)
    w = state["layer2.0.downsample.0.weight"]  # (out, in, h, w)
    kernel = ours["params/stage2_block1/shortcut/proj/conv/kernel"]  # (h, w, in, out)
    assert kernel.shape == (1, 1, 64, 128) and kernel[0, 0, 5, 17] == w[17, 5, 0, 0]
    w = state["layer3.1.conv2.weight"]
    np.testing.assert_array_equal(ours["params/stage3_block2/conv2/conv/kernel"][2, 0, 7, 3], w[3, 7, 2, 0])
    for leaf, ours_leaf in (
        ("weight", "params/{}/scale"),
        ("bias", "params/{}/bias"),
        ("running_mean", "batch_stats/{}/mean"),
        ("running_var", "batch_stats/{}/var"),
    ):
        np.testing.assert_array_equal(ours[ours_leaf.format("stage4_block2/conv1/bn")], state[f"layer4.1.bn1.{leaf}"])
    np.testing.assert_array_equal(ours["params/stem/bn/scale"], state["bn1.weight"])
    np.testing.assert_array_equal(ours["params/fc/kernel"], state["fc.weight"].T)


def test_densenet_legacy_names_and_torchvision_epsilon(tmp_path):
    state = random_state(CASES["densenet121"][0]())
    module, variables = ti.load_torchvision_weights("densenet121", state)
    ours = flat(variables)
    assert module.bn_epsilon == 1e-5  # ours defaults to Keras's 1.001e-5
    np.testing.assert_array_equal(
        ours["batch_stats/conv3_block7/1_bn/var"], state["features.denseblock2.denselayer7.norm.2.running_var"]
    )
    np.testing.assert_array_equal(
        ours["params/pool4/conv/kernel"][0, 0], state["features.transition3.conv.weight"][:, :, 0, 0].T
    )
    np.testing.assert_array_equal(ours["params/bn/bias"], state["features.norm5.bias"])


@pytest.mark.parametrize("model_name, window, channels", [("vgg11", 7, 512), ("alexnet_owt", 6, 256)])
def test_first_fc_rows_follow_our_hwc_flatten(model_name, window, channels, tmp_path):
    shapes, kwargs = CASES[model_name]
    state = random_state(shapes())
    _, variables = ti.load_torchvision_weights(model_name, state, **kwargs)
    kernel = flat(variables)["params/fc6/kernel"]
    torch_fc = state["classifier.0.weight" if model_name == "vgg11" else "classifier.1.weight"]
    for c, h, w, o in ((0, 0, 0, 0), (3, 5, 1, 7), (channels - 1, window - 1, 2, 31)):
        assert kernel[(h * window + w) * channels + c, o] == torch_fc[o, (c * window + h) * window + w]


def test_googlenet_tv_tensors_and_aux_head(tmp_path):
    state = random_state(CASES["googlenet_tv"][0]())
    module, variables = ti.load_torchvision_weights("googlenet_tv", state)
    ours = flat(variables)
    assert module.aux_logits and module.num_classes == 10
    np.testing.assert_array_equal(
        ours["params/inception_4a/5x5/conv/kernel"][2, 1, 7, 30],
        state["inception4a.branch3.1.conv.weight"][30, 7, 2, 1],
    )
    np.testing.assert_array_equal(ours["batch_stats/conv2/bn/var"], state["conv3.bn.running_var"])
    np.testing.assert_array_equal(
        ours["params/conv2_reduce/conv/kernel"][0, 0], state["conv2.conv.weight"][:, :, 0, 0].T
    )
    kernel, torch_fc1 = ours["params/aux2/fc/kernel"], state["aux2.fc1.weight"]
    for c, h, w, o in ((0, 0, 0, 0), (5, 1, 3, 17), (127, 3, 3, 1023)):  # rows follow our HWC flatten
        assert kernel[(h * 4 + w) * 128 + c, o] == torch_fc1[o, (c * 4 + h) * 4 + w]
    np.testing.assert_array_equal(ours["params/aux1/classifier/bias"], state["aux1.fc2.bias"])
    no_aux = {k: v for k, v in state.items() if not k.startswith("aux")}
    module, variables = ti.load_torchvision_weights("googlenet_tv", no_aux)
    assert not module.aux_logits and "aux1" not in variables["params"]
    assert (
        sum(v.size for v in jax.tree.leaves(variables["params"])) == 6_624_904 - 1_025_000 + 10_250
    )  # torchvision's count with a 10-class fc


def test_dense_kernel_turns_torch_chw_flatten_into_ours():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3, 3), np.float32)  # NCHW
    weight = rng.standard_normal((4, 45), np.float32)
    theirs = x.reshape(2, -1) @ weight.T
    ours = x.transpose(0, 2, 3, 1).reshape(2, -1) @ ti.dense_kernel(weight, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_grouped_conv_kernel_computes_torchs_grouped_conv():
    import flax.linen as nn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 6, 6), np.float32)  # NCHW, 2 groups of 2
    weight = rng.standard_normal((6, 2, 3, 3), np.float32)  # torch (out, in/groups, h, w)
    theirs = jax.lax.conv_general_dilated(
        x, weight, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=2
    )
    layer = nn.Conv(6, (3, 3), padding=((1, 1), (1, 1)), feature_group_count=2, use_bias=False)
    ours = layer.apply({"params": {"kernel": ti.conv_kernel(weight)}}, x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs).transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_missing_extra_and_misshapen_tensors_are_named():
    state = random_state(CASES["resnet18"][0]())
    del state["layer1.0.bn1.running_mean"]
    state["classifier.weight"] = np.zeros((10, 512), np.float32)  # a DenseNet's name
    state["layer1.0.conv1.bias"] = np.zeros(64, np.float32)
    state["layer2.1.conv1.weight"] = np.zeros((128, 128, 1, 1), np.float32)
    with pytest.raises(ti.TorchImportError) as error:
        ti.load_torchvision_weights("resnet18", state)
    message = str(error.value)
    assert message.startswith("torchvision's resnet18 weights do not fit our resnet18 one to one (4 problems)")
    assert "extra: torchvision's classifier (weight) has no module in ours" in message
    assert "extra: layer1.0.conv1.bias -> params/stage1_block1/conv1/conv/bias does not exist in ours" in message
    assert "shape: layer2.1.conv1.weight is (128, 128, 1, 1)" in message
    assert (
        "missing: 2 of ours received nothing (batch_stats/stage1_block1/conv1/bn/mean, "
        "params/stage2_block2/conv1/conv/kernel)" in message
    )


def test_names_without_a_torchvision_counterpart():
    assert ti.torchvision_architecture("resnet50_v1_5") == "resnet50"
    assert ti.torchvision_architecture("alexnet_owt") == "alexnet"
    assert ti.torchvision_architecture("googlenet_tv") == "googlenet"
    assert len(ti.supported_models()) == 20
    for name, hint in (
        ("resnet50", "into our resnet50_v1_5"),
        ("alexnet", "into our alexnet_owt"),
        ("googlenet", "into our googlenet_tv"),
        ("lenet5", "no torchvision counterpart"),
    ):
        with pytest.raises(ti.TorchImportError, match=hint):
            ti.load_torchvision_weights(name, {})


@pytest.mark.parametrize(
    "model_name, ours",
    [
        ("resnet18", CASES["resnet18"][0]),
        ("resnet50_v1_5", CASES["resnet50_v1_5"][0]),
        ("densenet121", lambda: densenet_keys(32, 64, (6, 12, 24, 16), 10)),
        ("vgg11_bn", lambda: vgg_keys(VGG11, True, 64, 10)),
        ("alexnet_owt", lambda: alexnet_keys(64, 10)),
        ("googlenet_tv", CASES["googlenet_tv"][0]),
    ],
)
def test_our_key_generators_are_torchvisions(model_name, ours):
    """torchvision's state dict (10 classes, GoogLeNet with its aux heads, VGG's and AlexNet's
    hidden FC layers 64 wide), key by key, as the golden of `model_name` recorded it."""
    recipe, _ = read_golden("torch", model_name)
    assert {key: tuple(shape) for key, shape, *_ in recipe["tensors"]} == ours()


def test_inception_v3_aux_head_follows_the_file():
    full = torch_state(read_golden("torch", "inception_v3")[0])  # torchvision's, with AuxLogits
    module, variables = ti.load_torchvision_weights("inception_v3", full)
    assert module.aux_logits and variables["params"]["aux"]["fc"]["kernel"].shape == (768, 10)
    np.testing.assert_array_equal(variables["params"]["aux"]["fc"]["kernel"], full["AuxLogits.fc.weight"].T)
    assert module.pool_count_include_pad  # torchvision's average pools count the padding
    state = {k: v for k, v in full.items() if not k.startswith("AuxLogits.")}
    module, variables = ti.load_torchvision_weights("inception_v3", state)
    assert not module.aux_logits and "aux" not in variables["params"]
