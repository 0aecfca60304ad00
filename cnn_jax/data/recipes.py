"""Named preprocessing recipes: each paper's training augmentation and test-time crop, as data.

A `Recipe` is a frozen description, such as "shorter side S ~ U[256, 480], random
crop, flip, PCA lighting 0.1, Caffe normalisation". Its methods turn it into the
TF ops of `augment.py`:

    recipe = get_recipe("resnet")
    x = recipe.train(image_uint8, seed, 224)   # float32 [224, 224, 3], normalised, model-ready
    x = recipe.eval(image_uint8, 224)          # resize shorter side to eval_resize(224), centre 224
    x = recipe.eval_square(image_uint8, 224)   # the eval_resize(224)^2 square, for 10-crop
    x = recipe.eval_square(image_uint8, 224, max(recipe.dense_scales(224)))   # for dense
    recipe.normalize(float_image_0_255)        # tf, numpy or jax array

`train`, `eval` and `eval_square` already apply `normalize`. Call `normalize` yourself
only on images that bypass them (e.g. `cnn-jax explain --image`). `augment` is `train`
without the normalisation, on the 0-255 scale, which is handy for looking at the images.

Geometric sizes are the papers' pixels at the papers' crop size `base_size` (224).
For a smaller crop, such as a CPU demo at 32x32, they are scaled by size/base_size so
that the augmentation keeps its strength. Training scales are never smaller than the crop.

Modern add-ons, off in every paper recipe and available to all of them (`get_recipe(
"resnet", randaugment="2,9", mixup_alpha=0.2)`, or the `data.*` config keys of the same
names through `recipe_from_config`): RandAugment inside `augment`, after the crop and
flip; Random Erasing at the end of `augment` (erasing.py); Mixup/CutMix on whole batches,
which the pipeline applies with `recipe.mixing`.

The RGB statistics of the per-channel normalisations become a grayscale mean/std on
one-channel images: `for_channels(recipe, channels, dataset)` (channel_stats.py).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cnn_jax.data import augment as A
from cnn_jax.data import randaugment as RA
from cnn_jax.data.channel_stats import PER_CHANNEL, grayscale_stats
from cnn_jax.data.erasing import random_erasing
from cnn_jax.data.mixing import Mixing
from cnn_jax.errors import UserError, did_you_mean

CROPS = ("scale", "rrc", "inception", "resize", "center", "pad", "center_pad")
# data.* config keys that are Recipe fields; None (their default) keeps the recipe's value.
ADDON_KEYS = ("randaugment", "random_erasing", "mixup_alpha", "cutmix_alpha", "mix_prob", "mix_switch_prob")
COLORS = (None, "inception", "fb_jitter")


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    # Geometry. "scale": resize the shorter side to S ~ U{scale_range}, optional centre
    # SxS square (AlexNet), random crop. "rrc": torchvision RandomResizedCrop.
    # "inception": TF's distorted-bounding-box crop. "resize": the whole image to size^2.
    # "center": shorter side to size, centre crop (no randomness). "pad": zero-pad
    # `pad_pixels` on every side, random size x size crop (the ResNet paper's CIFAR recipe).
    # "center_pad": the image, unscaled, centred in a size x size zero field (LeNet-5's 28x28
    # MNIST digits in its 32x32 input; no randomness).
    crop: str = "scale"
    pad_pixels: int = 4
    scale_range: tuple = (256, 256)
    square: bool = False
    area_range: tuple = (0.08, 1.0)
    aspect_range: tuple = (3 / 4, 4 / 3)
    random_interpolation: bool = False
    flip: bool = True
    # Photometry.
    color: str | None = None
    lighting_std: float = 0.0
    normalization: str = "imagenet"
    # ((mean, ...), (std, ...)) per channel on the [0, 1] scale, replacing the normalisation's
    # RGB statistics; () keeps them. `for_channels` sets it for one-channel images.
    channel_stats: tuple = ()
    # Test time: shorter side resized to eval_short_side (fixed, e.g. AlexNet 256)
    # or, when None, to size / crop_fraction (256 for 224, 342 for 299), then centre crop.
    eval_short_side: int | None = None
    crop_fraction: float = 0.875
    # VGG's test scales Q for dense evaluation (Table 3: Q = S, or 384 for S in [256, 512];
    # Table 4's multi-scale sets are an override away). None: (eval_resize(size),).
    test_scales: tuple | None = None
    base_size: int = 224
    # Modern add-ons (Cubuk et al. 2020; Zhang et al. 2018; Yun et al. 2019), off here.
    randaugment: str = ""  # "N,M", e.g. "2,9"; "" = off
    random_erasing: float = 0.0  # Random Erasing's probability p (Zhong et al. 2020: 0.5); 0 = off
    mixup_alpha: float = 0.0  # Beta(alpha, alpha) mixing weights; 0 = off
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0  # probability that a batch is mixed
    mix_switch_prob: float = 0.5  # both on: probability of CutMix rather than Mixup

    def __post_init__(self):
        if self.crop not in CROPS:
            raise UserError(f"Recipe crop {self.crop!r} is not one of {CROPS}.")
        if self.color not in COLORS:
            raise UserError(f"Recipe color {self.color!r} is not one of {COLORS}.")
        if self.normalization not in A.NORMALIZATIONS:
            raise UserError(
                f"Normalization {self.normalization!r} is unknown"
                f"{did_you_mean(self.normalization, A.NORMALIZATIONS)}; "
                f"choose one of {sorted(A.NORMALIZATIONS)}."
            )
        RA.parse_randaugment(self.randaugment)
        if not 0.0 <= self.random_erasing <= 1.0:
            raise UserError(f"Random Erasing's probability {self.random_erasing} is not in [0, 1]; pass e.g. 0.5.")
        _ = self.mixing  # building it validates the mixing fields

    # -- sizes ---------------------------------------------------------------
    def _px(self, pixels: int, size: int) -> int:
        """A paper pixel size, scaled down for crops smaller than base_size."""
        return max(int(round(pixels * min(1.0, size / self.base_size))), size)

    def train_scales(self, size: int) -> tuple:
        return self._px(self.scale_range[0], size), self._px(self.scale_range[1], size)

    def eval_resize(self, size: int) -> int:
        """Shorter side the test image is resized to before the centre size x size crop."""
        if self.crop in ("resize", "center", "pad", "center_pad"):
            return size
        if self.eval_short_side is not None:
            return self._px(self.eval_short_side, size)
        return max(int(round(size / self.crop_fraction)), size)

    def dense_scales(self, size: int) -> tuple:
        """Shorter sides Q at which `eval_protocols.dense` applies the network."""
        if self.test_scales is None:
            return (self.eval_resize(size),)
        return tuple(self._px(q, size) for q in self.test_scales)

    @property
    def mixing(self) -> Mixing:
        """The batch-level mixing, which `Pipeline` applies after batching."""
        return Mixing(self.mixup_alpha, self.cutmix_alpha, self.mix_prob, self.mix_switch_prob)

    # -- the three entry points ------------------------------------------------
    def normalize(self, x):
        if self.channel_stats:
            mean, std = (np.asarray(s, np.float32) for s in self.channel_stats)
            return (x / np.float32(A.PIXEL_MAX) - mean) / std
        return A.NORMALIZATIONS[self.normalization](x)

    def augment(self, image, seed, size: int) -> tf.Tensor:
        """Training augmentation without normalisation: float32 [size, size, C], 0-255 scale."""
        s_crop, s_flip, s_color, s_light = A.split_seed(seed, 4)
        x = self._train_crop(A.to_float(image), s_crop, size)
        if self.flip:
            x = A.random_flip(x, s_flip)
        if self.randaugment:
            # Folded in rather than a fifth split: the four seeds above stay as without it.
            s_rand = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1)
            x = RA.rand_augment(_set_shape(x, size, image), s_rand, *RA.parse_randaugment(self.randaugment))
        if self.color == "inception":
            x = A.inception_color_distortion(x, s_color)
        elif self.color == "fb_jitter":
            x = A.color_jitter(x, s_color)
        if self.lighting_std:
            x = A.pca_lighting(x, s_light, self.lighting_std)
        if self.random_erasing:
            # Last, as in the paper, on the augmented image; folded in like RandAugment's seed.
            s_erase = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 2)
            x = random_erasing(_set_shape(x, size, image), s_erase, self.random_erasing)
        return _set_shape(x, size, image)

    def train(self, image, seed, size: int) -> tf.Tensor:
        return self.normalize(self.augment(image, seed, size))

    def eval(self, image, size: int) -> tf.Tensor:
        """Single centre crop, normalised."""
        x = A.center_crop(self._resized(image, self.eval_resize(size)), size)
        return _set_shape(self.normalize(x), size, image)

    def eval_square(self, image, size: int, side: int | None = None) -> tf.Tensor:
        """The central side x side square (default eval_resize(size)) of the image resized to
        shorter side `side`, normalised: the input of `ten_crop` and `dense`."""
        side = self.eval_resize(size) if side is None else side
        x = A.center_crop(self._resized(image, side), side)
        return _set_shape(self.normalize(x), side, image)

    # -- helpers ---------------------------------------------------------------
    def _resized(self, image, short):
        if self.crop == "center_pad":
            return tf.image.resize_with_crop_or_pad(A.to_float(image), short, short)
        if self.crop in ("resize", "pad"):
            return A.resize(image, short, short)
        return A.resize_shorter_side(image, short)

    def _train_crop(self, x, seed, size):
        if self.crop == "scale":
            s_scale, s_crop = A.split_seed(seed, 2)
            lo, hi = self.train_scales(size)
            x = A.random_shorter_side(x, s_scale, lo, hi)
            if self.square:  # AlexNet: the central S x S first
                x = A.center_crop(x, lo)
            return A.random_crop(x, s_crop, size)
        if self.crop in ("rrc", "inception"):
            style = "torchvision" if self.crop == "rrc" else "inception"
            return A.random_resized_crop(
                x, seed, size, self.area_range, self.aspect_range, style, self.random_interpolation
            )
        if self.crop == "resize":
            return A.resize(x, size, size)
        if self.crop == "pad":
            p = self.pad_pixels
            return A.random_crop(tf.pad(A.resize(x, size, size), [[p, p], [p, p], [0, 0]]), seed, size)
        if self.crop == "center_pad":
            return tf.image.resize_with_crop_or_pad(x, size, size)
        return A.center_crop(A.resize_shorter_side(x, size), size)


def _set_shape(x, size, image):
    x = tf.convert_to_tensor(x)
    x.set_shape([size, size, image.shape[-1]])
    return x


# --- the recipes
_INCEPTION = Recipe(
    "inception",
    "TF Inception preprocessing (GoogLeNet Sec. 6, Inception-v3/IRv2/Xception): "
    "crop of 8%-100% area, aspect 3/4-4/3, random interpolation, flip, brightness/saturation/"
    "hue/contrast in a random order; [-1, 1]. Eval: centre 87.5% (342 -> 299).",
    crop="inception",
    random_interpolation=True,
    color="inception",
    normalization="inception",
)

_TORCHVISION = Recipe(
    "torchvision",
    "torchvision reference recipe (ResNet v1.5 and the *_bn/one-tower weights): "
    "RandomResizedCrop 224 + flip; ImageNet mean/std. Eval: resize 256, centre 224.",
    crop="rrc",
)


def _vgg_fixed(s: int) -> Recipe:
    return Recipe(
        f"vgg_s{s}",
        f"VGG single-scale training (Sec. 3.1): shorter side S={s}, "
        "random 224 crop, flip, RGB colour shift (AlexNet PCA); Caffe BGR mean. "
        f"Dense eval at Q=S={s}; centre crop 224 of 256.",
        scale_range=(s, s),
        lighting_std=0.1,
        normalization="caffe",
        test_scales=(s,),
    )


RECIPES = {
    r.name: r
    for r in [
        Recipe(
            "alexnet",
            "AlexNet (Sec. 4.1): shorter side 256, central 256x256, random 224 (or "
            "227) crop, flip, PCA lighting sigma 0.1, mean subtraction (per channel, Caffe BGR). "
            "Eval: 256x256 square (10-crop) or its centre.",
            scale_range=(256, 256),
            square=True,
            lighting_std=0.1,
            normalization="caffe",
            eval_short_side=256,
        ),
        _vgg_fixed(256),
        _vgg_fixed(384),
        Recipe(
            "vgg_jitter",
            "VGG multi-scale training (Sec. 3.1): shorter side S ~ U[256, 512], "
            "random 224 crop, flip, RGB colour shift; Caffe BGR mean. Dense eval at Q=384; centre "
            "crop 224 of 256.",
            scale_range=(256, 512),
            lighting_std=0.1,
            normalization="caffe",
            test_scales=(384,),
        ),
        Recipe(
            "resnet",
            "ResNet paper (Sec. 3.4): shorter side S ~ U[256, 480], random 224 crop, "
            "flip, AlexNet PCA colour augmentation; per-channel mean (Caffe BGR). Eval: 256.",
            scale_range=(256, 480),
            lighting_std=0.1,
            normalization="caffe",
        ),
        _TORCHVISION,
        dataclasses.replace(_TORCHVISION, name="resnet_v1_5"),
        Recipe(
            "fb_resnet",
            "fb.resnet.torch (DenseNet's recipe): RandomResizedCrop 224, colour "
            "jitter 0.4, PCA lighting 0.1, flip; ImageNet mean/std. Eval: resize 256, centre 224.",
            crop="rrc",
            color="fb_jitter",
            lighting_std=0.1,
        ),
        _INCEPTION,
        dataclasses.replace(_INCEPTION, name="googlenet"),
        Recipe(
            "cifar",
            "ResNet paper, CIFAR-10 (Sec. 4.2): 4 pixels of zero padding on each side, "
            "random 32x32 crop, horizontal flip; per-channel mean/std. Eval: the image as it is.",
            crop="pad",
            normalization="imagenet",
        ),
        Recipe(
            "digits",
            "Small grayscale digits: the whole image resized to size x size, scaled to [0, 1]; no augmentation.",
            crop="resize",
            flip=False,
            normalization="unit",
        ),
        Recipe(
            "mnist",
            "LeNet-5's MNIST input (Sec. II-A): the 28x28 image, unscaled, centred in "
            "a size x size (32x32) zero field, scaled to [0, 1]; no augmentation.",
            crop="center_pad",
            flip=False,
            normalization="unit",
        ),
        Recipe(
            "none",
            "No augmentation: shorter side to size, centre crop, scaled to [0, 1].",
            crop="center",
            flip=False,
            normalization="unit",
        ),
    ]
}


def list_recipes() -> list:
    return sorted(RECIPES)


def get_recipe(name: str, **overrides) -> Recipe:
    """The named recipe; `overrides` replace its fields (lighting_std=0.0, area_range=(0.35, 1))."""
    if name not in RECIPES:
        raise UserError(
            f"Unknown preprocessing recipe {name!r}{did_you_mean(name, RECIPES)}; "
            f"choose one of {', '.join(list_recipes())}."
        )
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"Recipe {name!r} has no option(s) {unknown}; valid ones are {sorted(fields)}.")
    return dataclasses.replace(RECIPES[name], **overrides) if overrides else RECIPES[name]


def for_channels(recipe: Recipe, channels: int, dataset: str = "") -> Recipe:
    """`recipe` for `channels`-channel images of `dataset`. One channel replaces the RGB
    statistics of a per-channel normalisation with grayscale ones (channel_stats.py): mean
    and std for `imagenet`, the mean alone on the 0-255 scale for `caffe`."""
    if channels != 1 or recipe.normalization not in PER_CHANNEL:
        return recipe
    mean, std = grayscale_stats(dataset)
    if recipe.normalization == "caffe":
        std = 1.0 / A.PIXEL_MAX
    return dataclasses.replace(recipe, channel_stats=((mean,), (std,)))


def recipe_from_config(data) -> Recipe:
    """`data.recipe` with the add-ons that `data.*` sets (ADDON_KEYS; None keeps the recipe's)."""
    overrides = {k: data.get(k) for k in ADDON_KEYS if data.get(k) is not None}
    return get_recipe(data.recipe, **overrides)
