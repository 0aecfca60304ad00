"""RandAugment (Cubuk et al. 2020): per image, N ops drawn uniformly (with replacement)
from a fixed list of 14, all at one magnitude M, with stateless seeds (augment.py's
conventions: `op(image, seed, ...)`, float32 on the 0-255 scale).

The ops reproduce PIL's ImageOps/ImageEnhance/affine transforms (timm's RandAugment calls
PIL, the paper's TF code imitates it), pixel for pixel up to rounding ties, including
PIL's uint8 arithmetic: the image is rounded and clipped to [0, 255] on entry, and
computed pixels are truncated as PIL does. Geometric ops sample the nearest pixel and fill
with grey 128, as both references do.

Magnitude: M in [0, 10], m = M / 10, on timm's "increasing" scale. M = 0 leaves every op
that takes a magnitude unchanged, and M = 10 is the strongest: rotate +-30 degrees, shear
+-0.3, translate +-45% of the side, colour/contrast/brightness/sharpness factor 1 +- 0.9,
solarize above 0, posterize to 4 bits. The paper's TF code maps solarize and the
enhance ops the other way round (M = 0 there is a strong change), which contradicts the
paper's description of M as the strength of every op; this scale follows the paper.
"""

import math

import tensorflow as tf

from cnn_jax.data.augment import split_seed, to_float
from cnn_jax.errors import UserError

FILL = 128.0
MAX_MAGNITUDE = 10.0
SHARPEN_KERNEL = ((1, 1, 1), (1, 5, 1), (1, 1, 1))  # PIL's ImageFilter.SMOOTH, sum 13


def _uint8(x):
    return tf.round(tf.clip_by_value(x, 0.0, 255.0))


def _truncate(x):
    """PIL's float -> uint8 of computed pixels: clip, then drop the fraction."""
    return tf.floor(tf.clip_by_value(x, 0.0, 255.0))


def _blend(degenerate, image, factor):
    """PIL ImageEnhance: factor 0 gives `degenerate`, 1 the image, > 1 extrapolates."""
    return _truncate(degenerate + factor * (image - degenerate))


def _gray(image):
    """[H, W, 1] luma in PIL's fixed point ("L": ITU-R 601, 16-bit weights, rounded); exact in
    float32 since every sum is below 2**24. A one-channel image is its own grey."""
    if image.shape[-1] == 1:
        return image
    weighted = tf.tensordot(image, tf.constant([19595.0, 38470.0, 7471.0]), axes=[[2], [0]])
    return tf.floor((weighted + 32768.0) / 65536.0)[..., None]


# --- pixel ops: image [H, W, C] float32, integer values in [0, 255]


def identity(image):
    return image


def autocontrast(image):
    """Stretch each channel so that its darkest pixel becomes 0 and its brightest 255."""
    lo = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    hi = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    stretched = (image - lo) * 255.0 / tf.maximum(hi - lo, 1.0)
    return tf.where(hi > lo, _truncate(stretched), image)


def _equalize_channel(channel):
    """PIL's ImageOps.equalize for one [H, W] channel."""
    values = tf.cast(channel, tf.int32)
    hist = tf.math.bincount(values, minlength=256, maxlength=256)
    nonzero = tf.boolean_mask(hist, hist > 0)
    step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255
    lut = (tf.cumsum(hist) + step // 2) // tf.maximum(step, 1)
    lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
    return tf.where(step > 0, tf.cast(tf.gather(lut, values), tf.float32), channel)


def equalize(image):
    return tf.stack([_equalize_channel(c) for c in tf.unstack(image, axis=-1)], axis=-1)


def solarize(image, threshold):
    """Invert every pixel value >= threshold."""
    return tf.where(image >= threshold, 255.0 - image, image)


def posterize(image, bits: int):
    """Keep the `bits` high bits of each 8-bit value."""
    step = float(2 ** (8 - bits))
    return tf.floor(image / step) * step


def color(image, factor):
    return _blend(_gray(image), image, factor)


def contrast(image, factor):
    return _blend(tf.round(tf.reduce_mean(_gray(image))), image, factor)


def brightness(image, factor):
    return _blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
    """Blend with the image smoothed by PIL's SMOOTH kernel; the 1-pixel border stays as it is."""
    kernel = tf.constant(SHARPEN_KERNEL, tf.float32) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, image.shape[-1], 1])
    smooth = tf.round(tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0])
    inner = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(inner, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)
    return _blend(degenerate, image, factor)


# --- geometric ops


def _transform(image, matrix):
    """PIL's affine transform: the output point (x, y) takes the input pixel nearest to
    (a0 x + a1 y + a2, b0 x + b1 y + b2), matrix = (a0, a1, a2, b0, b1, b2), in PIL's continuous
    coordinates (pixel i spans [i, i + 1)); grey FILL outside the image."""
    a0, a1, a2, b0, b1, b2 = (tf.cast(v, tf.float32) for v in matrix)
    # TF's transform maps pixel indices (pixel centres at i): shift by half a pixel each way.
    a2, b2 = a2 + 0.5 * (a0 + a1 - 1.0), b2 + 0.5 * (b0 + b1 - 1.0)
    flat = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=flat,
        output_shape=tf.shape(image)[:2],
        fill_value=FILL,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )
    return out[0]


def translate_x(image, pixels):
    """Move the content `pixels` to the right (left when negative)."""
    return _transform(image, (1.0, 0.0, -pixels, 0.0, 1.0, 0.0))


def translate_y(image, pixels):
    """Move the content `pixels` down (up when negative)."""
    return _transform(image, (1.0, 0.0, 0.0, 0.0, 1.0, -pixels))


def shear_x(image, shear):
    return _transform(image, (1.0, shear, 0.0, 0.0, 1.0, 0.0))


def shear_y(image, shear):
    return _transform(image, (1.0, 0.0, 0.0, shear, 1.0, 0.0))


def rotate(image, degrees):
    """Rotate counter-clockwise by `degrees` about the image centre."""
    shape = tf.cast(tf.shape(image), tf.float32)
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    a = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(a), tf.sin(a)
    return _transform(image, (cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy))


# --- the op list and the magnitude scale: name -> (op, args(m, sign, height, width))
# with m = M / 10 and sign = +-1 drawn per op (for the ops whose direction is arbitrary).


def _factor(m, sign, h, w):
    return (1.0 + sign * 0.9 * m,)


OPS = {
    "identity": (identity, lambda m, sign, h, w: ()),
    "autocontrast": (autocontrast, lambda m, sign, h, w: ()),
    "equalize": (equalize, lambda m, sign, h, w: ()),
    "rotate": (rotate, lambda m, sign, h, w: (sign * 30.0 * m,)),
    "solarize": (solarize, lambda m, sign, h, w: (256.0 - 256.0 * m,)),
    "color": (color, _factor),
    "posterize": (posterize, lambda m, sign, h, w: (8 - int(4 * m),)),
    "contrast": (contrast, _factor),
    "brightness": (brightness, _factor),
    "sharpness": (sharpness, _factor),
    "shear_x": (shear_x, lambda m, sign, h, w: (sign * 0.3 * m,)),
    "shear_y": (shear_y, lambda m, sign, h, w: (sign * 0.3 * m,)),
    "translate_x": (translate_x, lambda m, sign, h, w: (sign * 0.45 * m * w,)),
    "translate_y": (translate_y, lambda m, sign, h, w: (sign * 0.45 * m * h,)),
}
OP_NAMES = tuple(OPS)


def apply_op(name: str, image, magnitude: float, sign=1.0):
    """One named op at magnitude M (0-10); `sign` picks the direction where there is one."""
    op, args = OPS[name]
    shape = tf.cast(tf.shape(image), tf.float32)
    return op(image, *args(magnitude / MAX_MAGNITUDE, sign, shape[0], shape[1]))


def rand_augment(image, seed, num_ops: int, magnitude: float, ops: tuple = OP_NAMES) -> tf.Tensor:
    """RandAugment(N=num_ops, M=magnitude) of one [H, W, C] image (C known statically: the
    colour ops differ for grey and RGB); float32, 0-255, integer-valued."""
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise ValueError(f"unknown RandAugment ops {unknown}")
    x = _uint8(to_float(image))
    for layer_seed in split_seed(seed, num_ops) if num_ops else []:
        s_op, s_sign = split_seed(layer_seed, 2)
        k = tf.random.stateless_uniform([], s_op, 0, len(ops), dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform([], s_sign) < 0.5, -1.0, 1.0)
        x = tf.switch_case(k, [lambda name=name, x=x, sign=sign: apply_op(name, x, magnitude, sign) for name in ops])
        x.set_shape(image.shape)
    return x


def parse_randaugment(spec: str):
    """'N,M' -> (N, M), '' -> None; anything else is a UserError."""
    if not spec:
        return None
    parts = [p.strip() for p in str(spec).split(",")]
    try:
        num_ops, magnitude = int(parts[0]), float(parts[1])
        valid = len(parts) == 2 and num_ops >= 0 and 0 <= magnitude <= MAX_MAGNITUDE
    except (ValueError, IndexError):
        valid = False
    if not valid:
        raise UserError(
            f"data.randaugment {spec!r} is not 'N,M'; set --config.data.randaugment to N ops and "
            f"a magnitude M in [0, {MAX_MAGNITUDE:g}], such as '2,9', or '' for off."
        )
    return num_ops, magnitude
