"""The test-time preprocessing each source of weights used, so that imported weights are
measured the way their authors measured them.

    torchvision  shorter side resized to 256 (342 for Inception-v3), centre crop 224 (299),
                 bilinear; [0, 1] pixels minus ImageNet's mean, over its std (RGB). Its
                 published Inception-v3 and GoogLeNet set `transform_input=True`, which turns
                 those inputs into (x - 0.5) / 0.5, i.e. [-1, 1]; our models have no such
                 step, so for them the default is [-1, 1] directly.
    keras        `preprocess_input`'s mode per application: "caffe" (RGB -> BGR, minus the
                 BGR means, 0-255) for VGG and ResNet, "tf" ([-1, 1]) for Inception-v3,
                 Inception-ResNet-v2, Xception and MobileNet, "torch" (ImageNet mean/std) for
                 DenseNet. Keras prescribes no resize or crop; we use torchvision's centre
                 87.5% (256 -> 224, 342 -> 299), the single-crop protocol of both tables.
    cnn_jax      a workdir's own evaluation recipe at its image size.

Resizing is TF's bilinear with antialiasing (`data.augment.resize`), which averages like
the PIL resize behind torchvision's numbers. A `Preprocessing` is a `Recipe`
(`data/recipes.py`) plus where it comes from: calling it runs `Recipe.eval`, and
`record()` is what `results.json` keeps.
"""

import dataclasses

from cnn_jax.data import augment as A
from cnn_jax.data.recipes import Recipe, get_recipe

# Keras's `preprocess_input` mode of each application, as our normalisation names.
KERAS_NORMALIZATION = {
    **dict.fromkeys(("vgg16", "vgg19", "resnet50", "resnet101", "resnet152"), "caffe"),
    **dict.fromkeys(("inception_v3", "inception_resnet_v2", "xception", "mobilenet_v1"), "inception"),
    **dict.fromkeys(("densenet121", "densenet169", "densenet201"), "imagenet"),
}
# torchvision models whose published weights expect `transform_input=True`.
TRANSFORM_INPUT = {"inception_v3", "googlenet_tv"}
TRANSFORM_INPUT_NOTE = (
    "ImageNet mean/std followed by torchvision's transform_input (published "
    "weights), which together give [-1, 1]; pass --normalization imagenet for "
    "weights trained with transform_input=False"
)

# What each normalisation does, as `results.json` records it: out = (pixel - mean) / std, with
# pixels on `pixel_scale` in `channel_order`; `keras_mode` is preprocess_input's name for it.
NORMALIZATION_RECORD = {
    "imagenet": {
        "keras_mode": "torch",
        "pixel_scale": "[0, 1]",
        "channel_order": "RGB",
        "mean": list(A.IMAGENET_MEAN_RGB),
        "std": list(A.IMAGENET_STD_RGB),
    },
    "caffe": {
        "keras_mode": "caffe",
        "pixel_scale": "[0, 255]",
        "channel_order": "BGR",
        "mean": list(A.CAFFE_MEAN_BGR),
        "std": [1.0, 1.0, 1.0],
    },
    "inception": {
        "keras_mode": "tf",
        "pixel_scale": "[0, 1]",
        "channel_order": "RGB",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    },
    "unit": {"pixel_scale": "[0, 1]", "channel_order": "RGB", "mean": [0.0], "std": [1.0]},
    "none": {"pixel_scale": "[0, 255]", "channel_order": "RGB", "mean": [0.0], "std": [1.0]},
}
# Every recipe's geometry at test time ("rrc": resize the shorter side, centre crop).
_CENTRE_CROP_RECIPE = "torchvision"


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    source: str  # torchvision | keras | cnn_jax
    recipe: Recipe  # its `eval` is the whole test-time transformation
    size: int  # crop side = the model's input side
    channels: int = 3
    note: str = ""

    def __call__(self, image):
        """uint8 (H, W, C) tf image -> the model's float32 (size, size, C) input."""
        return self.recipe.eval(image, self.size)

    def record(self) -> dict:
        whole = self.recipe.crop in ("resize", "pad")  # see Recipe._resized
        return {
            "source": self.source,
            "resize": f"{'whole image to' if whole else 'shorter side to'} {self.recipe.eval_resize(self.size)}",
            "crop": f"centre {self.size}x{self.size}",
            "interpolation": "bilinear, antialiased",
            "normalization": self.recipe.normalization,
            **NORMALIZATION_RECORD[self.recipe.normalization],
            **({"note": self.note} if self.note else {}),
        }


def _centre_crop(source: str, normalization: str, size: int, note: str = "") -> Preprocessing:
    return Preprocessing(source, get_recipe(_CENTRE_CROP_RECIPE, normalization=normalization), size, note=note)


def for_torchvision(model_name: str, size: int, normalization: str = "") -> Preprocessing:
    """torchvision's eval transform for our `model_name` (see the module docstring)."""
    published = model_name in TRANSFORM_INPUT and not normalization
    return _centre_crop(
        "torchvision",
        normalization or ("inception" if published else "imagenet"),
        size,
        TRANSFORM_INPUT_NOTE if published else "",
    )


def for_keras(model_name: str, size: int, normalization: str = "") -> Preprocessing:
    """Keras's preprocess_input for our `model_name`, with a centre crop."""
    return _centre_crop("keras", normalization or KERAS_NORMALIZATION[model_name], size)


def for_run(config, channels: int, normalization: str = "") -> Preprocessing:
    """A workdir's own evaluation preprocessing (its recipe at its image size)."""
    overrides = {"normalization": normalization} if normalization else {}
    return Preprocessing("cnn_jax", get_recipe(config.data.recipe, **overrides), int(config.data.image_size), channels)
