"""RandAugment: each op against hand-computed numbers and against PIL, the magnitude scale,
determinism per seed, and the recipe option."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from cnn_jax.data import randaugment as RA
from cnn_jax.data import recipes as R
from cnn_jax.errors import UserError

SEED = tf.constant([3, 11], tf.int64)
MAGNITUDE_OPS = tuple(n for n in RA.OP_NAMES if n not in ("autocontrast", "equalize"))


def _np(x):
    return np.asarray(x)


@pytest.fixture(scope="module")
def rgb():
    rs = np.random.RandomState(0)
    arr = rs.randint(0, 256, (24, 20, 3)).astype(np.uint8)
    arr[:, :5] = rs.randint(60, 90, (24, 5, 3))  # a low-contrast band, so equalize has work
    return arr


def test_solarize_posterize_translate_by_hand():
    column = tf.constant([0.0, 63.0, 64.0, 127.0, 128.0, 200.0, 255.0])[:, None, None]
    assert _np(RA.solarize(column, 128.0)).ravel().tolist() == [0, 63, 64, 127, 127, 55, 0]
    assert _np(RA.posterize(column, 2)).ravel().tolist() == [0, 0, 64, 64, 128, 192, 192]
    assert _np(RA.posterize(column, 8)).ravel().tolist() == _np(column).ravel().tolist()
    image = tf.reshape(tf.range(1.0, 7.0), [2, 3, 1])  # [[1 2 3] [4 5 6]]
    np.testing.assert_array_equal(_np(RA.translate_x(image, 1.0))[..., 0], [[128, 1, 2], [128, 4, 5]])
    np.testing.assert_array_equal(_np(RA.translate_x(image, -2.0))[..., 0], [[3, 128, 128], [6, 128, 128]])
    np.testing.assert_array_equal(_np(RA.translate_y(image, -1.0))[..., 0], [[4, 5, 6], [128, 128, 128]])


def test_autocontrast_and_brightness_by_hand():
    image = tf.constant([[10.0, 20.0], [30.0, 60.0]])[..., None]
    # (x - 10) * 255 / 50, truncated as PIL does: 0, 51, 102, 255.
    np.testing.assert_array_equal(_np(RA.autocontrast(image))[..., 0], [[0, 51], [102, 255]])
    np.testing.assert_array_equal(_np(RA.brightness(image, 1.5))[..., 0], [[15, 30], [45, 90]])
    np.testing.assert_array_equal(_np(RA.brightness(image, 5.0))[..., 0], [[50, 100], [150, 255]])


PIL_CASES = {
    "autocontrast": (lambda x: RA.autocontrast(x), lambda p: ImageOps.autocontrast(p)),
    "equalize": (lambda x: RA.equalize(x), lambda p: ImageOps.equalize(p)),
    "solarize": (lambda x: RA.solarize(x, 100.0), lambda p: ImageOps.solarize(p, 100)),
    "posterize": (lambda x: RA.posterize(x, 3), lambda p: ImageOps.posterize(p, 3)),
    "color": (lambda x: RA.color(x, 0.3), lambda p: ImageEnhance.Color(p).enhance(0.3)),
    "contrast": (lambda x: RA.contrast(x, 1.7), lambda p: ImageEnhance.Contrast(p).enhance(1.7)),
    "brightness": (lambda x: RA.brightness(x, 0.3), lambda p: ImageEnhance.Brightness(p).enhance(0.3)),
    "sharpness": (lambda x: RA.sharpness(x, 1.7), lambda p: ImageEnhance.Sharpness(p).enhance(1.7)),
    # Shears of 0.23 avoid sampling exactly half-way between pixels, where rounding ties differ.
    "shear_x": (
        lambda x: RA.shear_x(x, 0.23),
        lambda p: p.transform(p.size, Image.AFFINE, (1, 0.23, 0, 0, 1, 0), fillcolor=(128,) * 3),
    ),
    "shear_y": (
        lambda x: RA.shear_y(x, -0.23),
        lambda p: p.transform(p.size, Image.AFFINE, (1, 0, 0, -0.23, 1, 0), fillcolor=(128,) * 3),
    ),
    "translate_x": (
        lambda x: RA.translate_x(x, 3.0),
        lambda p: p.transform(p.size, Image.AFFINE, (1, 0, -3, 0, 1, 0), fillcolor=(128,) * 3),
    ),
    "rotate": (lambda x: RA.rotate(x, 20.0), lambda p: p.rotate(20, fillcolor=(128,) * 3)),
}


@pytest.mark.parametrize("name", sorted(PIL_CASES))
def test_op_equals_pil_pixel_for_pixel(rgb, name):
    ours, pil = PIL_CASES[name]
    expected = np.asarray(pil(Image.fromarray(rgb)), np.float32)
    got = _np(ours(tf.constant(rgb, tf.float32)))
    assert np.abs(got - expected).max() == 0 and np.abs(got - rgb).max() > 0


def test_magnitude_zero_leaves_the_image_unchanged(rgb):
    image = tf.constant(rgb)
    for i in range(8):
        out = RA.rand_augment(image, tf.constant([5, i], tf.int64), 3, 0, ops=MAGNITUDE_OPS)
        np.testing.assert_array_equal(_np(out), rgb.astype(np.float32))


def test_magnitude_ten_is_the_strongest_setting(rgb):
    x = tf.constant(rgb, tf.float32)
    np.testing.assert_array_equal(_np(RA.apply_op("solarize", x, 10)), 255.0 - rgb)  # threshold 0
    np.testing.assert_array_equal(_np(RA.apply_op("posterize", x, 10)), rgb // 16 * 16)  # 4 bits
    np.testing.assert_array_equal(_np(RA.apply_op("posterize", x, 9)), rgb // 8 * 8)  # 8 - int(3.6)
    np.testing.assert_array_equal(
        _np(RA.apply_op("brightness", x, 10, -1.0)), np.floor(rgb * np.float32(0.1))
    )  # factor 1 - 0.9
    # translate 45% of the 20-pixel width: 9 columns of grey fill.
    moved = _np(RA.apply_op("translate_x", x, 10))
    assert (moved[:, :9] == 128).all() and np.array_equal(moved[:, 9:], rgb[:, :11])


def test_same_seed_same_output_other_seed_differs(rgb):
    image = tf.constant(rgb)
    a, b = RA.rand_augment(image, SEED, 2, 9), RA.rand_augment(image, SEED, 2, 9)
    np.testing.assert_array_equal(_np(a), _np(b))
    outs = [_np(RA.rand_augment(image, tf.constant([3, i], tf.int64), 2, 9)) for i in range(6)]
    assert len({o.tobytes() for o in outs}) >= 5
    assert all(o.shape == (24, 20, 3) and o.min() >= 0 and o.max() <= 255 for o in outs)
    assert all(np.array_equal(o, np.round(o)) for o in outs)


@pytest.mark.parametrize("spec,parsed", [("", None), ("2,9", (2, 9.0)), (" 1 , 0 ", (1, 0.0))])
def test_parse(spec, parsed):
    assert RA.parse_randaugment(spec) == parsed


@pytest.mark.parametrize("spec", ["2", "2;9", "a,b", "2,11", "-1,5", "2,9,1"])
def test_parse_rejects(spec):
    with pytest.raises(UserError, match="data.randaugment .* is not 'N,M'.*such as '2,9'"):
        RA.parse_randaugment(spec)


def test_recipe_option_in_a_tf_data_graph_with_unknown_shapes(rgb):
    base = R.get_recipe("cifar")
    ra = R.get_recipe("cifar", randaugment="2,9")
    assert R.get_recipe("cifar", randaugment="") == base and base.randaugment == ""
    images = tf.data.Dataset.from_tensors(tf.constant(rgb)).repeat(4).enumerate()

    def fn(i, im):
        im = tf.ensure_shape(tf.identity(im), [None, None, 3])
        s = tf.stack([tf.constant(1, tf.int64), i])
        return ra.train(im, s, 16), base.train(im, s, 16)

    pairs = list(images.map(fn, num_parallel_calls=2).as_numpy_iterator())
    again = list(images.map(fn).as_numpy_iterator())
    for (with_ra, _), (with_ra2, _) in zip(pairs, again):
        assert with_ra.shape == (16, 16, 3) and np.isfinite(with_ra).all()
        np.testing.assert_array_equal(with_ra, with_ra2)
    assert sum(np.abs(a - b).max() > 0.01 for a, b in pairs) >= 3  # RandAugment changed most of them
    with pytest.raises(UserError, match="randaugment"):
        R.get_recipe("cifar", randaugment="9")
