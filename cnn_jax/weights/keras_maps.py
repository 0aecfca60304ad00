"""Which Keras layer feeds which of our modules: one small map per model family.

A map turns a `keras.applications` layer name into the '/'-joined path of our
module (`conv3_block2_1_conv` -> `stage2_block2/conv1/conv` in ResNet), or
returns None for a layer it does not name. Keras leaves many layers unnamed
(Inception's `conv2d_17`, Xception's residual projections); the core pairs
those by order instead (see `keras_import.pair_layers`), so a map only has to
name what Keras names.

`fold_bias` serves Keras's ResNet, whose convs have a bias that ours (followed
by BatchNorm, as in the paper) lack: it names the BatchNorm that absorbs it.
"""

import dataclasses
import re
from typing import Callable

Rename = Callable[[str], "str | None"]


def _no_fold(path: str) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class FamilyMap:
    rename: Rename  # Keras layer name -> our module path, or None
    fold_bias: Callable[[str], "str | None"] = _no_fold  # our conv path -> BN taking its bias


def by_patterns(*rules: tuple) -> Rename:
    """(regex, template) pairs, first full match wins; the template uses \\1-style groups."""
    compiled = [(re.compile(pattern), template) for pattern, template in rules]

    def rename(name: str):
        for pattern, template in compiled:
            match = pattern.fullmatch(name)
            if match:
                return match.expand(template)
        return None

    return rename


# VGG: Keras counts convs within a block as we do; its fc1/fc2/predictions are the
# paper's FC6/FC7/FC8. Keras's Flatten is (h, w, c), the order of our FC6 rows.
VGG = FamilyMap(
    by_patterns((r"block(\d)_conv(\d)", r"conv\1_\2"), (r"fc1", "fc6"), (r"fc2", "fc7"), (r"predictions", "fc8"))
)


def _resnet(name: str):
    """Keras numbers stages conv2..conv5 and a block's units 0 (projection shortcut) to 3."""
    if match := re.fullmatch(r"conv1_(conv|bn)", name):
        return f"stem/{match[1]}"
    if match := re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", name):
        unit = "shortcut/proj" if match[3] == "0" else f"conv{match[3]}"
        return f"stage{int(match[1]) - 1}_block{match[2]}/{unit}/{match[4]}"
    return "fc" if name == "predictions" else None


def _conv_bn_sibling(path: str):
    """A ConvBN's conv `.../conv` hands its bias to `.../bn`: BN(z + b) with mean m is BN(z)
    with mean m - b, exactly."""
    return path[: -len("conv")] + "bn" if path.endswith("/conv") else None


RESNET = FamilyMap(_resnet, _conv_bn_sibling)

# DenseNet: our module names are Keras's with '/' where Keras joins a block or
# transition name to its layer name (densenet.py's docstring).
DENSENET = FamilyMap(
    by_patterns(
        (r"(conv\d_block\d+)_(\d_(?:bn|conv))", r"\1/\2"),
        (r"(conv1|pool\d)_(bn|conv)", r"\1/\2"),
        (r"(bn|predictions)", r"\1"),
    )
)

# Inception-v3: Keras names only the classifier; every conv2d_N / batch_normalization_N
# pairs by order with our ConvBN units, which are created in Keras's order.
INCEPTION_V3 = FamilyMap(by_patterns((r"predictions", "predictions")))

# Inception-ResNet-v2: Keras names the residual up-projections and the last conv unit.
INCEPTION_RESNET_V2 = FamilyMap(
    by_patterns(
        (r"(block(?:35|17|8)_\d+)_conv", r"\1/conv"),
        (r"conv_7b", "conv_7b/conv"),
        (r"conv_7b_bn", "conv_7b/bn"),
        (r"predictions", "predictions"),
    )
)

# Xception: blocks 2-13 are modules (`block4/sepconv2_bn`), block 1 and 14 layers are
# top-level under Keras's own names; the unnamed residual convs pair by order.
XCEPTION = FamilyMap(
    by_patterns(
        (r"(block1_conv\d(?:_bn)?)", r"\1"),
        (r"(block14_sepconv\d(?:_bn)?)", r"\1"),
        (r"(block\d+)_(sepconv\d(?:_bn)?)", r"\1/\2"),
        (r"predictions", "predictions"),
    )
)

# MobileNet: our module names are Keras's layer names.
MOBILENET = FamilyMap(by_patterns((r"(conv1(?:_bn)?|conv_(?:dw|pw)_\d+(?:_bn)?|conv_preds)", r"\1")))


@dataclasses.dataclass(frozen=True)
class KerasModel:
    constructor: str  # keras.applications.<constructor>
    family: FamilyMap
    defaults: tuple = ()  # (key, value) options our model needs to compute Keras's function


KERAS_EPSILON_RESNET = {"bn_epsilon": 1.001e-5}  # Keras's ResNet BN epsilon (torchvision: 1e-5)
NO_BN_GAMMA = {"bn_scale": False}  # Keras's Inception BN has no gamma

KERAS_MODELS = {
    "vgg16": KerasModel("VGG16", VGG),
    "vgg19": KerasModel("VGG19", VGG),
    "resnet50": KerasModel("ResNet50", RESNET, tuple(KERAS_EPSILON_RESNET.items())),
    "resnet101": KerasModel("ResNet101", RESNET, tuple(KERAS_EPSILON_RESNET.items())),
    "resnet152": KerasModel("ResNet152", RESNET, tuple(KERAS_EPSILON_RESNET.items())),
    "inception_v3": KerasModel("InceptionV3", INCEPTION_V3, tuple(NO_BN_GAMMA.items())),
    "inception_resnet_v2": KerasModel("InceptionResNetV2", INCEPTION_RESNET_V2, tuple(NO_BN_GAMMA.items())),
    "xception": KerasModel("Xception", XCEPTION),
    "densenet121": KerasModel("DenseNet121", DENSENET),
    "densenet169": KerasModel("DenseNet169", DENSENET),
    "densenet201": KerasModel("DenseNet201", DENSENET),
    "mobilenet_v1": KerasModel("MobileNet", MOBILENET),
}
