"""The papers' augmentation and normalisation ops, as pure `tf.data`-ready TF functions.

Conventions, shared by every op here and by `recipes.py`:

* Images are `[H, W, C]` tensors. Ops work in float32 on the **0-255 scale**
  (`to_float` only casts). That is the scale Caffe, cuda-convnet and Keras'
  `preprocess_input` use, so the normalisations below map it to each reference's
  input range. A float image passed in is assumed to be on the 0-255 scale already.
* Every random op is `op(image, seed, ...)`. `seed` is an int32/int64 tensor of
  shape [2], and the op uses only stateless TF random ops. The same seed
  therefore gives the same output whatever the tf.data parallelism or element
  order. An op that needs several draws splits its seed with `split_seed`.
  Deterministic ops take no seed.
* Boxes are int32 `[y, x, height, width]` in pixels of the image they came from.
"""

import math

import numpy as np
import tensorflow as tf

# ImageNet statistics (RGB). The torchvision mean/std are on the [0, 1] scale.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
# Caffe/Keras "caffe" mode: BGR channel means on the 0-255 scale (VGG, ResNet Caffe models).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# PCA of ImageNet RGB pixels on the [0, 1] scale (AlexNet Sec. 4.1 as published by
# fb.resnet.torch): eigenvalues, and the eigenvectors as *columns* (rows are R, G, B).
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
PIXEL_MAX = 255.0


# --- seeds, dtypes


def split_seed(seed, num: int) -> list:
    """`num` independent [2] seeds derived from one (stateless, so reproducible)."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num)
    return [seeds[i] for i in range(num)]


def to_float(image) -> tf.Tensor:
    """uint8 or float -> float32 on the 0-255 scale (a cast, no rescaling)."""
    return tf.cast(image, tf.float32)


def _hw(image):
    shape = tf.shape(image)
    return shape[0], shape[1]


# --- deterministic geometry


def shorter_side_dims(height, width, size):
    """Output (h, w) when the shorter side becomes `size`; the longer side is truncated
    like torchvision's `Resize(int)`, so the aspect ratio is kept to within a pixel."""
    h, w, s = tf.cast(height, tf.float32), tf.cast(width, tf.float32), tf.cast(size, tf.float32)
    short = tf.minimum(h, w)
    new_h = tf.where(h <= w, s, tf.floor(s * h / short))
    new_w = tf.where(h <= w, tf.floor(s * w / short), s)
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def resize(image, height, width, method: str = "bilinear", antialias: bool = True) -> tf.Tensor:
    # antialias=True makes downscaling average like PIL (torchvision's reference path).
    return tf.image.resize(to_float(image), tf.stack([height, width]), method=method, antialias=antialias)


def resize_shorter_side(image, size, method: str = "bilinear") -> tf.Tensor:
    """Isotropic rescale so that min(H, W) == size (VGG's "training scale" S, test scale Q)."""
    h, w = shorter_side_dims(*_hw(image), size)
    return resize(image, h, w, method)


def center_crop(image, height, width=None) -> tf.Tensor:
    """Central [height, width] window; offsets are floored (TF's and ten_crop's convention)."""
    width = height if width is None else width
    h, w = _hw(image)
    return crop_to_box(image, tf.stack([(h - height) // 2, (w - width) // 2, height, width]))


def crop_to_box(image, box) -> tf.Tensor:
    box = tf.cast(box, tf.int32)
    return tf.slice(image, tf.stack([box[0], box[1], 0]), tf.stack([box[2], box[3], -1]))


def flip_left_right(image) -> tf.Tensor:
    return image[:, ::-1, :]


# --- random geometry


def random_flip(image, seed) -> tf.Tensor:
    """Horizontal flip with probability 1/2 (every paper since AlexNet)."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def random_crop(image, seed, size: int) -> tf.Tensor:
    """A uniformly placed size x size window (AlexNet, VGG, ResNet)."""
    channels = tf.shape(image)[2]
    return tf.image.stateless_random_crop(image, tf.stack([size, size, channels]), seed)


def scale_jitter_size(seed, lo: int, hi: int) -> tf.Tensor:
    """VGG's training scale S, an integer uniform in [lo, hi] (lo == hi: fixed S)."""
    return tf.random.stateless_uniform([], seed, lo, hi + 1, dtype=tf.int32)


def random_shorter_side(image, seed, lo: int, hi: int) -> tf.Tensor:
    """Scale jittering: rescale so the shorter side is S ~ U{lo..hi} (VGG [256, 512],
    ResNet [256, 480])."""
    return resize_shorter_side(image, scale_jitter_size(seed, lo, hi))


def random_resized_crop_box(
    image_shape, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), attempts: int = 10
) -> tf.Tensor:
    """torchvision `RandomResizedCrop.get_params`: area fraction ~ U(scale), log-uniform
    aspect ratio w/h in `ratio`, first of `attempts` candidates that fits; otherwise a
    centre crop at the aspect ratio clamped into `ratio`. All attempts are drawn at once
    (a fixed number of draws keeps the op stateless and branch-free)."""
    s_area, s_ratio, s_y, s_x = split_seed(seed, 4)
    h = tf.cast(image_shape[0], tf.float32)
    w = tf.cast(image_shape[1], tf.float32)
    area = h * w * tf.random.stateless_uniform([attempts], s_area, scale[0], scale[1])
    aspect = tf.exp(tf.random.stateless_uniform([attempts], s_ratio, math.log(ratio[0]), math.log(ratio[1])))
    cw, ch = tf.round(tf.sqrt(area * aspect)), tf.round(tf.sqrt(area / aspect))
    fits = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    first = tf.argmax(tf.cast(fits, tf.int32))  # index of the first True
    found = tf.reduce_any(fits)
    in_ratio = w / h
    fb_w = tf.where(in_ratio > ratio[1], tf.round(h * ratio[1]), w)
    fb_h = tf.where(in_ratio < ratio[0], tf.round(w / ratio[0]), h)
    crop_h = tf.where(found, ch[first], fb_h)
    crop_w = tf.where(found, cw[first], fb_w)
    u_y = tf.random.stateless_uniform([], s_y)
    u_x = tf.random.stateless_uniform([], s_x)
    y = tf.where(found, tf.floor(u_y * (h - crop_h + 1)), tf.floor((h - crop_h) / 2))
    x = tf.where(found, tf.floor(u_x * (w - crop_w + 1)), tf.floor((w - crop_w) / 2))
    return tf.cast(tf.stack([y, x, crop_h, crop_w]), tf.int32)


def inception_crop_box(
    image_shape,
    seed,
    area_range=(0.08, 1.0),
    aspect_range=(3 / 4, 4 / 3),
    min_object_covered: float = 0.0,
    max_attempts: int = 100,
) -> tf.Tensor:
    """TF Inception preprocessing's `distorted_bounding_box_crop` with the whole image as
    the object box (falls back to the whole image after `max_attempts`). TF-slim used
    area (0.05, 1) with min_object_covered 0.1 (so effectively >= 10%); the defaults
    here are the GoogLeNet paper's 8%-100%."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.cast(image_shape, tf.int32),
        tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_range,
        area_range=area_range,
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


def random_interpolation_resize(image, seed, size: int) -> tf.Tensor:
    """Resize to size x size with a method drawn uniformly from `RESIZE_METHODS`
    (GoogLeNet Sec. 6; TF-slim's non-fast mode). No antialiasing, as in TF-slim."""
    k = tf.random.stateless_uniform([], seed, 0, len(RESIZE_METHODS), dtype=tf.int32)
    x = to_float(image)
    branches = [lambda m=m: resize(x, size, size, m, antialias=False) for m in RESIZE_METHODS]
    return tf.clip_by_value(tf.switch_case(k, branches), 0.0, PIXEL_MAX)  # bicubic overshoots


def random_resized_crop(
    image,
    seed,
    size: int,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
    style: str = "torchvision",
    random_interpolation: bool = False,
):
    """Crop a random box (torchvision- or Inception-style sampler), resize to size x size."""
    s_box, s_resize = split_seed(seed, 2)
    if style == "torchvision":
        box = random_resized_crop_box(tf.shape(image), s_box, scale, ratio)
    elif style == "inception":
        box = inception_crop_box(tf.shape(image), s_box, scale, ratio)
    else:
        raise ValueError(f"unknown crop style {style!r}")
    patch = crop_to_box(image, box)
    if random_interpolation:
        return random_interpolation_resize(patch, s_resize, size)
    return resize(patch, size, size)


# --- photometric


def lighting_shift(alpha, eigval=PCA_EIGVAL, eigvec=PCA_EIGVEC, pixel_scale=PIXEL_MAX):
    """The per-channel RGB offset [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T of AlexNet Sec. 4.1,
    times `pixel_scale` because the eigenvalues are for [0, 1] pixels."""
    vec = tf.constant(eigvec, tf.float32)
    return pixel_scale * tf.linalg.matvec(vec, alpha * tf.constant(eigval, tf.float32))


def pca_lighting(image, seed, std: float = 0.1, eigval=PCA_EIGVAL, eigvec=PCA_EIGVEC):
    """AlexNet's "fancy PCA" colour augmentation: alpha ~ N(0, std^2) per image, and the
    same RGB shift added to every pixel. No clipping, as in AlexNet/fb.resnet.torch."""
    if std == 0:
        return to_float(image)
    alpha = std * tf.random.stateless_normal([3], seed)
    return to_float(image) + lighting_shift(alpha, eigval, eigvec)


# TF-slim `distort_color` orderings (b=brightness, s=saturation, h=hue, c=contrast).
INCEPTION_COLOR_ORDERINGS = ("bshc", "sbch", "chbs", "hscb")


def inception_color_distortion(image, seed) -> tf.Tensor:
    """TF Inception preprocessing's photometric distortions (non-fast mode): brightness
    +-32/255, saturation and contrast x[0.5, 1.5], hue +-0.2, applied in one of four fixed
    orders drawn uniformly, then clipped. Works on [0, 1] internally, as TF-slim did."""
    s_order, s_b, s_s, s_h, s_c = split_seed(seed, 5)
    ops = {
        "b": lambda x: tf.image.stateless_random_brightness(x, 32.0 / 255.0, s_b),
        "s": lambda x: tf.image.stateless_random_saturation(x, 0.5, 1.5, s_s),
        "h": lambda x: tf.image.stateless_random_hue(x, 0.2, s_h),
        "c": lambda x: tf.image.stateless_random_contrast(x, 0.5, 1.5, s_c),
    }

    def apply_in_order(x, order):
        for name in order:
            x = ops[name](x)
        return x

    x = to_float(image) / PIXEL_MAX
    k = tf.random.stateless_uniform([], s_order, 0, len(INCEPTION_COLOR_ORDERINGS), tf.int32)
    x = tf.switch_case(k, [lambda o=o: apply_in_order(x, o) for o in INCEPTION_COLOR_ORDERINGS])
    return tf.clip_by_value(x, 0.0, 1.0) * PIXEL_MAX


def _grayscale(x):
    return tf.image.rgb_to_grayscale(x)  # ITU-R 601 luma, as fb.resnet.torch


def color_jitter(image, seed, brightness=0.4, contrast=0.4, saturation=0.4) -> tf.Tensor:
    """fb.resnet.torch `ColorJitter` (DenseNet's recipe): in a random order, blend with
    black (brightness), with the mean grey level (contrast) and with the grey image
    (saturation), each with weight 1 + U(-v, v). No clipping, as in the reference."""
    s_order, s_alpha = split_seed(seed, 2)
    strength = tf.constant([brightness, contrast, saturation], tf.float32)
    alpha = 1.0 + strength * tf.random.stateless_uniform([3], s_alpha, -1.0, 1.0)

    def blend(x, other, a):
        return a * x + (1.0 - a) * other

    def jitter(x, which):
        return tf.switch_case(
            which,
            [
                lambda: blend(x, 0.0, alpha[0]),
                lambda: blend(x, tf.reduce_mean(_grayscale(x)), alpha[1]),
                lambda: blend(x, _grayscale(x), alpha[2]),
            ],
        )

    order = tf.argsort(tf.random.stateless_uniform([3], s_order))
    x = to_float(image)
    for i in range(3):
        x = jitter(x, order[i])
    return x


# --- normalisations
# Each takes a float image on the 0-255 scale. Written with plain arithmetic and
# slicing so that they work on tf, numpy and jax arrays alike.


def normalize_imagenet(x):
    """torchvision/Keras "torch" mode: [0, 1] scale, minus ImageNet RGB mean, over std."""
    mean = np.asarray(IMAGENET_MEAN_RGB, np.float32)
    std = np.asarray(IMAGENET_STD_RGB, np.float32)
    return (x / np.float32(PIXEL_MAX) - mean) / std


def normalize_caffe_bgr(x):
    """Caffe/Keras "caffe" mode: RGB -> BGR, minus the BGR channel means, 0-255 scale."""
    return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)


def normalize_inception(x):
    """TF Inception/Keras "tf" mode: 0 -> -1, 255 -> 1."""
    return x / np.float32(PIXEL_MAX / 2) - np.float32(1.0)


def normalize_unit(x):
    """[0, 255] -> [0, 1] (the digits recipe; no statistics)."""
    return x / np.float32(PIXEL_MAX)


def normalize_identity(x):
    return x


NORMALIZATIONS = {
    "imagenet": normalize_imagenet,
    "caffe": normalize_caffe_bgr,
    "inception": normalize_inception,
    "unit": normalize_unit,
    "none": normalize_identity,
}
