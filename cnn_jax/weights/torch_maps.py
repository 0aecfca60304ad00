"""Which torchvision tensor feeds which of our modules: one small map per model family.

A map turns a torchvision module name (a state-dict key without its last part,
`layer2.0.downsample.0`) into the '/'-joined path of our module
(`stage2_block1/shortcut/proj/conv`), or returns None for a name it does not
know. torchvision names every module, so unlike Keras's no pairing by order is
needed. The table at the end is keyed by OUR model names; torchvision's name of
the same network is `TorchModel.architecture`. Where torchvision's name means
another network than ours of the same name (its `resnet50` is v1.5, its `alexnet`
the one-tower net, its `googlenet` not the paper's but our `googlenet_tv`), `NEAR_MISSES`
says why.
"""

import dataclasses
import re

from cnn_jax.models.vgg import CONFIGS as VGG_CONFIGS
from cnn_jax.models.vgg import POOLED_SIZE as VGG_POOLED
from cnn_jax.weights.keras_maps import Rename, by_patterns

# torchvision's flat classifier over the (C, H, W) map: the window of each of its FC6.
ALEXNET_POOLED = 6


@dataclasses.dataclass(frozen=True)
class TorchModel:
    architecture: str  # torchvision.models.<architecture>
    rename: Rename  # torchvision module name -> our module path, or None
    classifier: str  # torchvision's last linear layer (gives num_classes)
    flatten: tuple = ()  # (our path, window): a linear layer over a flattened CxHxW map
    defaults: tuple = ()  # (key, value) options our model needs for torchvision's function
    aux: str | None = None  # key prefix of torchvision's auxiliary head (ours: aux_logits)
    rekey: tuple = ()  # (regex, replacement) on whole keys: older torchvision names
    caveat: str = ""  # why our logits cannot equal torchvision's, if they cannot


ALEXNET = by_patterns(
    *((rf"features\.{i}", f"conv{n}") for n, i in enumerate((0, 3, 6, 8, 10), 1)),
    (r"classifier\.1", "fc6"),
    (r"classifier\.4", "fc7"),
    (r"classifier\.6", "fc8"),
)


def vgg(config: str, batch_norm: bool) -> Rename:
    """torchvision's `features` is a flat Sequential: conv, [BN,] ReLU per conv, one index per
    max-pool; `classifier` is Linear, ReLU, Dropout twice, then Linear (indices 0, 3, 6)."""
    table, index, block, conv = {}, 0, 1, 1
    for entry in VGG_CONFIGS[config]:
        if entry == "M":
            index, block, conv = index + 1, block + 1, 1
            continue
        name = f"conv{block}_{conv}"
        if batch_norm:  # ours: a ConvBN at `name`
            table[f"features.{index}"] = f"{name}/conv"
            table[f"features.{index + 1}"] = f"{name}/bn"
        else:
            table[f"features.{index}"] = name
        index, conv = index + (3 if batch_norm else 2), conv + 1
    table.update({"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"})
    return table.get


def _resnet(name: str):
    """torchvision counts blocks from 0 in layer1..layer4 and calls the projection
    `downsample` (0: conv, 1: BN)."""
    if match := re.fullmatch(r"(conv|bn)1", name):
        return f"stem/{match[1]}"
    if match := re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)", name):
        return f"stage{match[1]}_block{int(match[2]) + 1}/conv{match[4]}/{match[3]}"
    if match := re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])", name):
        part = ("conv", "bn")[int(match[3])]
        return f"stage{match[1]}_block{int(match[2]) + 1}/shortcut/proj/{part}"
    return "fc" if name == "fc" else None


_DENSE_LAYER = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}


def _densenet(name: str):
    """torchvision numbers dense blocks and transitions from 1, ours (Keras's) from 2."""
    if match := re.fullmatch(r"features\.(conv|norm)0", name):
        return f"conv1/{'conv' if match[1] == 'conv' else 'bn'}"
    if match := re.fullmatch(r"features\.denseblock(\d)\.denselayer(\d+)\.(\w+)", name):
        part = _DENSE_LAYER.get(match[3])
        return part and f"conv{int(match[1]) + 1}_block{match[2]}/{part}"
    if match := re.fullmatch(r"features\.transition(\d)\.(norm|conv)", name):
        return f"pool{int(match[1]) + 1}/{'bn' if match[2] == 'norm' else 'conv'}"
    return {"features.norm5": "bn", "classifier": "predictions"}.get(name)


# Published DenseNet files predate torchvision 0.3 and name `norm.1` what is now `norm1`;
# torchvision's own loader renames them with this pattern.
DENSENET_LEGACY = ((r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.", r"\1\2."),)

# Inception-v3: torchvision's Mixed_5b..Mixed_7c are Keras's mixed0..mixed10; the
# branch and stem names are the same (TF-slim's) in both.
_MIXED = {
    f"Mixed_{n}": f"mixed{i}" for i, n in enumerate(("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"))
}


def _inception_v3(name: str):
    if match := re.fullmatch(r"(Conv2d_\w+)\.(conv|bn)", name):
        return f"stem/{match[1]}/{match[2]}"
    if (match := re.fullmatch(r"(Mixed_\w+)\.(branch\w+)\.(conv|bn)", name)) and match[1] in _MIXED:
        return f"{_MIXED[match[1]]}/{match[2]}/{match[3]}"
    if match := re.fullmatch(r"AuxLogits\.(conv[01])\.(conv|bn)", name):
        return f"aux/{match[1]}/{match[2]}"
    return {"AuxLogits.fc": "aux/fc", "fc": "predictions"}.get(name)


# GoogLeNet: torchvision's conv2/conv3 are the paper's 3x3 reduce and 3x3 (ours conv2_reduce,
# conv2); its Inception branches are numbered 1-4, ours named by Table 1's columns.
_GOOGLENET_BRANCH = {
    "branch1": "1x1",
    "branch2.0": "3x3_reduce",
    "branch2.1": "3x3",
    "branch3.0": "5x5_reduce",
    "branch3.1": "5x5",
    "branch4.1": "pool_proj",
}
_GOOGLENET_STEM = {"conv1": "conv1", "conv2": "conv2_reduce", "conv3": "conv2"}
_GOOGLENET_AUX = {"conv.conv": "conv/conv", "conv.bn": "conv/bn", "fc1": "fc", "fc2": "classifier"}
GOOGLENET_AUX_POOLED = 4  # torchvision's aux fc1 reads the flattened 128x4x4 map


def _googlenet(name: str):
    if (match := re.fullmatch(r"(conv\d)\.(conv|bn)", name)) and match[1] in _GOOGLENET_STEM:
        return f"{_GOOGLENET_STEM[match[1]]}/{match[2]}"
    if match := re.fullmatch(r"inception(\d\w)\.(branch\d(?:\.\d)?)\.(conv|bn)", name):
        branch = _GOOGLENET_BRANCH.get(match[2])
        return branch and f"inception_{match[1]}/{branch}/{match[3]}"
    if (match := re.fullmatch(r"(aux[12])\.(.+)", name)) and match[2] in _GOOGLENET_AUX:
        return f"{match[1]}/{_GOOGLENET_AUX[match[2]]}"
    return "classifier" if name == "fc" else None


TORCHVISION_EPSILON = (("bn_epsilon", 1e-5),)  # our DenseNet-121/169/201 default to Keras's

TORCH_MODELS = {
    "alexnet_owt": TorchModel("alexnet", ALEXNET, "classifier.6", flatten=(("fc6", ALEXNET_POOLED),)),
    **{
        f"vgg{d}{bn}": TorchModel(f"vgg{d}{bn}", vgg(c, bool(bn)), "classifier.6", flatten=(("fc6", VGG_POOLED),))
        for d, c in (("11", "A"), ("13", "B"), ("16", "D"), ("19", "E"))
        for bn in ("", "_bn")
    },
    "resnet18": TorchModel("resnet18", _resnet, "fc"),
    "resnet34": TorchModel("resnet34", _resnet, "fc"),
    **{f"resnet{d}_v1_5": TorchModel(f"resnet{d}", _resnet, "fc") for d in (50, 101, 152)},
    **{
        f"densenet{d}": TorchModel(
            f"densenet{d}", _densenet, "classifier", defaults=TORCHVISION_EPSILON, rekey=DENSENET_LEGACY
        )
        for d in (121, 169, 201, 161)
    },
    # torchvision's 3x3 average pools count the zero padding (PyTorch's count_include_pad).
    "inception_v3": TorchModel(
        "inception_v3",
        _inception_v3,
        "fc",
        defaults=(("bn_scale", True), ("pool_count_include_pad", True)),
        aux="AuxLogits.",
    ),
    "googlenet_tv": TorchModel(
        "googlenet",
        _googlenet,
        "fc",
        aux="aux",
        flatten=(("aux1/fc", GOOGLENET_AUX_POOLED), ("aux2/fc", GOOGLENET_AUX_POOLED)),
    ),
}

# Our names whose torchvision namesake is another network.
NEAR_MISSES = {
    **{
        f"resnet{d}": f"torchvision's resnet{d} is ResNet v1.5 (stride in the 3x3 conv): load "
        f"its weights into our resnet{d}_v1_5"
        for d in (50, 101, 152)
    },
    "alexnet": "torchvision's alexnet is the one-tower AlexNet: load its weights into our alexnet_owt",
    "googlenet": "torchvision's googlenet is not the paper's network that our googlenet builds "
    "(BatchNorm after every conv instead of conv biases, a 3x3 conv in the '5x5' "
    "branch, no LRN): load its weights into our googlenet_tv",
}
