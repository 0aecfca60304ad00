"""The papers' augmentation ops and recipes: exact geometry, ranges, determinism per seed."""

import numpy as np
import pytest
import tensorflow as tf

from cnn_jax.data import augment as A
from cnn_jax.data import recipes as R
from cnn_jax.errors import UserError

H, W = 300, 400
SEEDS = [tf.constant([7, i], tf.int64) for i in range(64)]


@pytest.fixture(scope="module")
def image():
    return tf.constant(np.random.RandomState(0).randint(0, 256, (H, W, 3)).astype(np.uint8))


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


# Every random op as `f(image, seed)` for the determinism tests.
RANDOM_OPS = {
    "random_crop": lambda im, s: A.random_crop(im, s, 224),
    "scale_jitter": lambda im, s: A.random_shorter_side(im, s, 256, 512),
    "rrc_torchvision": lambda im, s: A.random_resized_crop(im, s, 64),
    "rrc_inception": lambda im, s: A.random_resized_crop(im, s, 64, style="inception", random_interpolation=True),
    "pca_lighting": lambda im, s: A.pca_lighting(im, s, 0.1),
    "inception_color": lambda im, s: A.inception_color_distortion(im, s),
    "color_jitter": lambda im, s: A.color_jitter(im, s),
}


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_random_op_same_seed_same_output_other_seed_differs(image, name):
    op = RANDOM_OPS[name]
    a, b, c = op(image, SEEDS[1]), op(image, SEEDS[1]), op(image, SEEDS[2])
    np.testing.assert_array_equal(_np(a), _np(b))
    assert a.shape != c.shape or np.abs(_np(a) - _np(c)).max() > 0.5


@pytest.mark.parametrize("name", R.list_recipes())
def test_recipe_train_deterministic_and_shapes(image, name):
    recipe = R.get_recipe(name)
    a = recipe.train(image, SEEDS[3], 224)
    np.testing.assert_array_equal(_np(a), _np(recipe.train(image, SEEDS[3], 224)))
    other = _np(recipe.train(image, SEEDS[4], 224))
    randomised = name not in ("digits", "mnist", "none")
    assert (np.abs(_np(a) - other).max() > 1e-3) == randomised
    assert a.shape == (224, 224, 3) and a.dtype == tf.float32 and np.isfinite(_np(a)).all()
    e = recipe.eval(image, 224)
    assert e.shape == (224, 224, 3) and e.dtype == tf.float32
    side = recipe.eval_resize(224)
    assert recipe.eval_square(image, 224).shape == (side, side, 3)
    # The single centre crop is the centre of the square the 10-crop protocol sees.
    off = (side - 224) // 2
    np.testing.assert_allclose(_np(recipe.eval_square(image, 224))[off : off + 224, off : off + 224], _np(e), atol=1e-4)


def test_recipe_in_graph_mode_with_unknown_shape_and_parallel_map(image):
    # tf.data traces with unknown H, W; results must not depend on parallelism or order.
    recipe = R.get_recipe("inception")
    images = tf.data.Dataset.from_tensors(image).repeat(6).enumerate()

    def fn(i, im):
        im = tf.ensure_shape(tf.identity(im), [None, None, 3])
        im = tf.image.crop_to_bounding_box(im, 0, 0, H - 10 * tf.cast(i, tf.int32), W)
        return i, recipe.train(im, tf.stack([tf.constant(5, tf.int64), i]), 96)

    serial = {int(i): x for i, x in images.map(fn).as_numpy_iterator()}
    opts = tf.data.Options()
    opts.deterministic = False
    parallel = images.map(fn, num_parallel_calls=4, deterministic=False).with_options(opts)
    for i, x in parallel.as_numpy_iterator():
        assert x.shape == (96, 96, 3)
        np.testing.assert_array_equal(x, serial[int(i)])
    assert len(serial) == 6


def test_random_flip_is_the_mirror_or_identity(image):
    x = tf.cast(image, tf.float32)
    mirror = _np(x)[:, ::-1]
    flipped = [bool((_np(A.random_flip(x, s)) == mirror).all()) for s in SEEDS[:16]]
    for s, f in zip(SEEDS[:16], flipped):
        np.testing.assert_array_equal(_np(A.random_flip(x, s)), mirror if f else _np(x))
    assert 0 < sum(flipped) < 16
    np.testing.assert_array_equal(_np(A.flip_left_right(x)), mirror)


def test_center_crop_and_shorter_side_resize_are_exact(image):
    crop = A.center_crop(image, 224, 200)
    np.testing.assert_array_equal(_np(crop), _np(image)[38:262, 100:300])
    assert A.resize_shorter_side(image, 256).shape == (256, 341, 3)  # 400*256/300 = 341.3
    assert A.resize_shorter_side(tf.transpose(image, [1, 0, 2]), 256).shape == (341, 256, 3)
    assert A.resize_shorter_side(image, 300).shape == (300, 400, 3)
    np.testing.assert_allclose(_np(A.resize_shorter_side(image, 300)), _np(image), atol=1e-3)


def test_random_crop_is_a_window_of_the_image(image):
    crop = _np(A.random_crop(image, SEEDS[0], 224))
    img = _np(image)
    hits = [
        (y, x)
        for y in range(H - 223)
        for x in range(W - 223)
        if img[y, x, 0] == crop[0, 0, 0] and (img[y : y + 224, x : x + 224] == crop).all()
    ]
    assert len(hits) == 1


def test_scale_jitter_shorter_side_in_range(image):
    sides = []
    for s in SEEDS[:24]:
        h, w = A.random_shorter_side(image, s, 256, 512).shape[:2]
        assert 256 <= h <= 512 and w == int(h * W / H)
        sides.append(h)
    assert len(set(sides)) > 12
    s_values = [int(A.scale_jitter_size(s, 256, 480)) for s in SEEDS]
    assert min(s_values) >= 256 and max(s_values) <= 480 and len(set(s_values)) > 40


@pytest.mark.parametrize("name,side", [("vgg_s256", 256), ("vgg_s384", 384)])
def test_fixed_scale_vgg_recipe_uses_exactly_s(image, name, side):
    lo, hi = R.get_recipe(name).train_scales(224)
    assert lo == hi == side
    assert A.random_shorter_side(image, SEEDS[0], lo, hi).shape[:2] == (side, int(side * W / H))


@pytest.mark.parametrize("style", ["torchvision", "inception"])
def test_random_resized_crop_box_area_and_aspect_in_range(style):
    box_fn = A.random_resized_crop_box if style == "torchvision" else A.inception_crop_box
    shape = tf.constant([H, W, 3])
    seeds = [tf.constant([11, i], tf.int64) for i in range(200)]
    boxes = np.stack([_np(box_fn(shape, s, (0.08, 1.0), (3 / 4, 4 / 3))) for s in seeds])
    y, x, h, w = boxes.T
    assert (y >= 0).all() and (x >= 0).all() and (y + h <= H).all() and (x + w <= W).all()
    area = h * w / (H * W)
    # Boxes are rounded to whole pixels: allow one pixel on each side.
    assert area.min() >= 0.08 * (1 - 2 / h.min()) - 1e-9 and area.max() <= 1.0
    aspect = w / h
    assert (aspect >= 3 / 4 - 1 / h).all() and (aspect <= 4 / 3 + 1 / h).all()
    assert area.min() < 0.2 and area.max() > 0.8  # the whole range is explored
    assert len({tuple(b) for b in boxes}) > 190


def test_random_resized_crop_box_fallback_clamps_aspect():
    # A 10x1000 strip: no candidate fits, so torchvision's fallback centre crop applies.
    box = _np(A.random_resized_crop_box(tf.constant([10, 1000]), SEEDS[0], (0.5, 1.0)))
    np.testing.assert_array_equal(box, [0, (1000 - 13) // 2, 10, 13])  # w = round(10 * 4/3)


def test_pca_lighting_sigma_zero_is_identity_and_shift_is_constant(image):
    np.testing.assert_array_equal(_np(A.pca_lighting(image, SEEDS[0], 0.0)), _np(image))
    out = _np(A.pca_lighting(image, SEEDS[0], 0.1))
    shift = out - _np(image).astype(np.float32)
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-4)
    # The shift is the AlexNet formula 255 * V (alpha * lambda), alpha ~ N(0, 0.1^2).
    alpha = 0.1 * _np(tf.random.stateless_normal([3], SEEDS[0]))
    expected = 255.0 * np.asarray(A.PCA_EIGVEC) @ (alpha * np.asarray(A.PCA_EIGVAL))
    np.testing.assert_allclose(shift[0, 0], expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.1


def test_pca_eigenvectors_are_orthonormal():
    v = np.asarray(A.PCA_EIGVEC)
    np.testing.assert_allclose(v.T @ v, np.eye(3), atol=2e-3)


def test_inception_color_distortion_stays_in_pixel_range(image):
    outs = [_np(A.inception_color_distortion(image, s)) for s in SEEDS[:8]]
    assert min(o.min() for o in outs) >= 0.0 and max(o.max() for o in outs) <= 255.0
    assert len({round(float(o.mean()), 3) for o in outs}) == 8


def test_caffe_normalisation_reverses_channels_and_subtracts_bgr_mean():
    x = np.zeros((2, 2, 3), np.float32) + np.array([10.0, 20.0, 30.0], np.float32)
    out = _np(A.normalize_caffe_bgr(tf.constant(x)))
    np.testing.assert_allclose(out[0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(A.normalize_caffe_bgr(x), out)  # numpy works too


def test_inception_and_imagenet_normalisations():
    x = tf.constant([[[0.0, 127.5, 255.0]]])
    np.testing.assert_allclose(_np(A.normalize_inception(x)), [[[-1.0, 0.0, 1.0]]], atol=1e-6)
    mean = tf.constant([[[0.485 * 255, 0.456 * 255, 0.406 * 255]]])
    np.testing.assert_allclose(_np(A.normalize_imagenet(mean)), np.zeros((1, 1, 3)), atol=1e-6)
    one_std = mean + tf.constant([[[0.229 * 255, 0.224 * 255, 0.225 * 255]]])
    np.testing.assert_allclose(_np(A.normalize_imagenet(one_std)), np.ones((1, 1, 3)), atol=1e-5)


def test_eval_resize_sizes():
    assert R.get_recipe("torchvision").eval_resize(224) == 256
    assert R.get_recipe("inception").eval_resize(299) == 342
    assert R.get_recipe("alexnet").eval_resize(227) == 256
    assert R.get_recipe("vgg_s384").dense_scales(224) == (384,)
    assert R.get_recipe("vgg_jitter").train_scales(224) == (256, 512)
    assert R.get_recipe("resnet").train_scales(224) == (256, 480)
    # Scaled down for small crops (CPU demos), never below the crop.
    assert R.get_recipe("resnet").train_scales(32) == (37, 69)


def test_alexnet_227_crop_comes_from_the_256_square(image):
    recipe = R.get_recipe("alexnet", lighting_std=0.0, flip=False, normalization="none")
    square = _np(A.center_crop(A.resize_shorter_side(image, 256), 256))
    crop = _np(recipe.train(image, SEEDS[5], 227))
    hits = [(y, x) for y in range(30) for x in range(30) if np.allclose(square[y : y + 227, x : x + 227], crop)]
    assert crop.shape == (227, 227, 3) and len(hits) == 1


def test_digits_recipe_scales_to_unit_range_without_augmentation():
    digit = tf.constant(np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 4)
    recipe = R.get_recipe("digits")
    a, b = recipe.train(digit, SEEDS[0], 32), recipe.train(digit, SEEDS[1], 32)
    np.testing.assert_array_equal(_np(a), _np(b))
    assert a.shape == (32, 32, 1)
    assert 0.0 <= float(tf.reduce_min(a)) < float(tf.reduce_max(a)) <= 1.0
    same = recipe.train(tf.constant(np.full((32, 32, 1), 255, np.uint8)), SEEDS[0], 32)
    np.testing.assert_allclose(_np(same), np.ones((32, 32, 1)), atol=1e-6)
    np.testing.assert_array_equal(_np(recipe.eval(digit, 32)), _np(a))


def test_unknown_recipe_and_option_are_user_errors():
    with pytest.raises(UserError, match="did you mean 'inception'"):
        R.get_recipe("inceptoin")
    with pytest.raises(UserError, match="no option"):
        R.get_recipe("resnet", lightning_std=0.1)
    with pytest.raises(UserError, match="Normalization"):
        R.get_recipe("resnet", normalization="cafe")
    assert R.get_recipe("resnet", lighting_std=0.0).lighting_std == 0.0
    assert R.get_recipe("resnet").lighting_std == 0.1  # the registry copy is untouched
