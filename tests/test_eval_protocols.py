"""Evaluation protocols against crops computed by hand with numpy slicing."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.data import eval_protocols as E
from cnn_jax.errors import UserError

N, S, C, K, CROP = 2, 8, 3, 4, 5
RNG = np.random.RandomState(0)
IMAGES = RNG.randn(N, S, S, C).astype(np.float32)
W_LIN = RNG.randn(CROP * CROP * C, K).astype(np.float32)
W_1X1 = RNG.randn(C, K).astype(np.float32)


def linear(x):
    """A tiny position-sensitive model: flatten + dense (only for CROP x CROP inputs)."""
    return x.reshape(x.shape[0], -1) @ W_LIN


def pooled(x):
    """Global mean pooling + dense: accepts any size, blind to flips and positions."""
    return x.mean(axis=(1, 2)) @ W_1X1


def score_map(x):
    """A 1x1 conv: a fully convolutional net returning a class score map (N, h, w, K)."""
    return jnp.einsum("nhwc,ck->nhwk", x, W_1X1) + jnp.arange(x.shape[1])[None, :, None, None]


def ten_crops_by_hand(images, crop):
    o = S - crop
    c = o // 2
    five = [
        images[:, :crop, :crop],
        images[:, :crop, o:],
        images[:, o:, :crop],
        images[:, o:, o:],
        images[:, c : c + crop, c : c + crop],
    ]
    return five + [v[:, :, ::-1] for v in five]


def test_ten_crop_equals_average_of_the_ten_explicit_crops():
    views = ten_crops_by_hand(IMAGES, CROP)
    expected = np.mean([v.reshape(N, -1) @ W_LIN for v in views], axis=0)
    np.testing.assert_allclose(E.ten_crop(linear, IMAGES, CROP), expected, rtol=1e-5, atol=1e-5)
    jitted = jax.jit(E.ten_crop, static_argnums=(0, 2))
    np.testing.assert_allclose(jitted(linear, jnp.asarray(IMAGES), CROP), expected, rtol=1e-5, atol=1e-5)
    # Several views per call (vmapped) gives the same numbers.
    np.testing.assert_allclose(E.ten_crop(linear, IMAGES, CROP, views_per_call=5), expected, rtol=1e-5, atol=1e-5)


def test_ten_crop_views_and_flips_are_exact():
    views = np.asarray(E.ten_crop_views(jnp.asarray(IMAGES), CROP))
    assert views.shape == (10, N, CROP, CROP, C)
    for got, want in zip(views, ten_crops_by_hand(IMAGES, CROP)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(views[5:], views[:5, :, :, ::-1])
    np.testing.assert_array_equal(np.asarray(E.flip(IMAGES)), IMAGES[:, :, ::-1, :])
    # The top-right crop mirrored is the top-left crop of the mirrored image.
    np.testing.assert_array_equal(views[6], IMAGES[:, :CROP, ::-1][:, :, :CROP])


def test_ten_crop_with_a_flip_invariant_model_is_the_mean_of_five_crops():
    five = ten_crops_by_hand(IMAGES, CROP)[:5]
    expected = np.mean([v.mean(axis=(1, 2)) @ W_1X1 for v in five], axis=0)
    np.testing.assert_allclose(E.ten_crop(pooled, IMAGES, CROP), expected, rtol=1e-5, atol=1e-6)


def test_softmax_averaging_returns_log_of_mean_probabilities():
    views = ten_crops_by_hand(IMAGES, CROP)
    probs = [np.asarray(jax.nn.softmax(v.reshape(N, -1) @ W_LIN)) for v in views]
    got = E.ten_crop(linear, IMAGES, CROP, average="softmax")
    np.testing.assert_allclose(np.exp(got), np.mean(probs, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(got).sum(-1), np.ones(N), rtol=1e-5)
    with pytest.raises(UserError, match="averaging"):
        E.ten_crop(linear, IMAGES, CROP, average="median")


def test_ten_crop_rejects_a_crop_larger_than_the_image():
    with pytest.raises(UserError, match="larger than"):
        E.ten_crop(linear, IMAGES, S + 1)


def test_center_is_the_model_on_the_batch():
    crop = IMAGES[:, :CROP, :CROP]
    np.testing.assert_allclose(E.center(linear, crop), crop.reshape(N, -1) @ W_LIN, rtol=1e-5, atol=1e-5)


def test_dense_averages_score_maps_over_space_and_flips():
    # By hand: the score map at each position, its spatial mean, for the image and its mirror.
    def by_hand(x):
        maps = np.einsum("nhwc,ck->nhwk", x, W_1X1) + np.arange(x.shape[1])[None, :, None, None]
        return maps.mean(axis=(1, 2))

    expected = (by_hand(IMAGES) + by_hand(IMAGES[:, :, ::-1])) / 2
    np.testing.assert_allclose(E.dense(score_map, IMAGES), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(E.dense(score_map, IMAGES, flips=False), by_hand(IMAGES), rtol=1e-5, atol=1e-5)
    # An apply_fn that already pools to (N, K) works the same way.
    np.testing.assert_allclose(E.dense(pooled, IMAGES), IMAGES.mean(axis=(1, 2)) @ W_1X1, rtol=1e-5, atol=1e-5)


def test_dense_over_several_scales():
    images = jnp.asarray(IMAGES)
    small = jax.image.resize(images, (N, 6, 6, C), "bilinear", antialias=True)
    per_scale = [
        np.asarray(score_map(x).mean(axis=(1, 2)) + score_map(E.flip(x)).mean(axis=(1, 2))) / 2 for x in (small, images)
    ]
    expected = np.mean(per_scale, axis=0)
    got = jax.jit(functools.partial(E.dense, score_map, scales=(6, 8)))(images)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(per_scale[0] - per_scale[1]).max() > 1e-3  # the scales really differ


def test_jit_protocol_keeps_variables_as_arguments():
    def model_apply(variables, x):
        return x.mean(axis=(1, 2)) @ variables["w"]

    run = E.jit_protocol("10crop", model_apply, crop=CROP)
    got = run({"w": jnp.asarray(W_1X1)}, jnp.asarray(IMAGES))
    np.testing.assert_allclose(got, E.ten_crop(pooled, IMAGES, CROP), rtol=1e-6, atol=1e-6)
    doubled = run({"w": jnp.asarray(2 * W_1X1)}, jnp.asarray(IMAGES))
    np.testing.assert_allclose(doubled, 2 * np.asarray(got), rtol=1e-5, atol=1e-6)


def test_protocol_names_and_vgg_scales():
    assert E.get_protocol("10crop") is E.ten_crop and E.get_protocol("ten_crop") is E.ten_crop
    assert E.get_protocol("center") is E.center and E.get_protocol("dense") is E.dense
    with pytest.raises(UserError, match="did you mean 'dense'"):
        E.get_protocol("dnse")
    assert E.vgg_test_scales((256, 256)) == (224, 256, 288)
    assert E.vgg_test_scales((256, 512)) == (256, 384, 512)
