"""Random Erasing (cnn_jax/data/erasing.py): one rectangle of the paper's sizes, drawn from the
example's seed, filled with random values, with the stated probability; off leaves the
recipe's images as they were."""

import numpy as np
import pytest
import tensorflow as tf

from cnn_jax.data import erasing
from cnn_jax.data.recipes import get_recipe
from cnn_jax.errors import UserError


def _seed(i: int) -> tf.Tensor:
    return tf.constant([7, i], tf.int64)


def test_boxes_have_the_papers_areas_and_aspects_and_fit():
    height, width = 28, 28
    for i in range(300):
        found, top, left, h, w = (int(v) for v in erasing.erasing_box(_seed(i), height, width))
        assert found == 1  # with 100 attempts a 28x28 image always finds one
        assert 0 <= top <= height - h and 0 <= left <= width - w and 0 < h < height and 0 < w < width
        # Rounded sides: the area within the drawn range up to the rounding of each side.
        assert (np.sqrt(0.02 * 784) - 1) ** 2 <= h * w <= (np.sqrt(0.4 * 784) + 1) ** 2 + 2 * 28
        assert 0.3 * 0.5 <= h / w <= 2 / 0.3


def test_a_box_that_never_fits_erases_nothing():
    found, *_ = (int(v) for v in erasing.erasing_box(_seed(0), 2, 2, area_range=(0.9, 0.9)))
    assert found == 0
    image = tf.fill([2, 2, 1], 9.0)
    np.testing.assert_array_equal(erasing.random_erasing(image, _seed(0), 1.0, area_range=(0.9, 0.9)), image)


def test_erasing_fills_one_rectangle_with_random_values_and_repeats_per_seed():
    image = tf.fill([28, 28, 1], 300.0)  # above the fill's 0-255 range: erased pixels are recognisable
    erased_fractions = []
    for i in range(200):
        out = erasing.random_erasing(image, _seed(i), 0.5).numpy()
        np.testing.assert_array_equal(out, erasing.random_erasing(image, _seed(i), 0.5).numpy())
        changed = out[..., 0] != 300.0
        if not changed.any():
            erased_fractions.append(0.0)
            continue
        rows, cols = np.nonzero(changed)
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one full rectangle, nothing outside it
        assert 0.0 <= out[changed].min() and out[changed].max() <= 255.0 and out[changed].std() > 30
        erased_fractions.append(changed.mean())
    erased = sum(f > 0 for f in erased_fractions)
    assert 70 <= erased <= 130  # p = 0.5 of 200 (binomial: 3 standard deviations either side is 79-121)
    mean_area = np.mean([f for f in erased_fractions if f > 0])
    assert 0.15 <= mean_area <= 0.25  # U(0.02, 0.4) has mean 0.21


def test_recipe_add_on_erases_after_the_crop_and_is_off_by_default():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (28, 28, 1)), tf.uint8)
    plain, erasing_on = get_recipe("cifar"), get_recipe("cifar", random_erasing=1.0)
    assert plain.random_erasing == 0.0
    seed = tf.constant([1, 5], tf.int64)
    a, b = plain.augment(image, seed, 28).numpy(), erasing_on.augment(image, seed, 28).numpy()
    differs = a != b
    assert differs.any() and differs.mean() < 0.45  # the crop and flip are the same; one box differs
    rows, cols = np.nonzero(differs[..., 0])
    assert differs[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].mean() > 0.95


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_outside_0_1_is_one_sentence(p):
    with pytest.raises(UserError, match="not in \\[0, 1\\]"):
        get_recipe("cifar", random_erasing=p)
