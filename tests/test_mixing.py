"""Mixup and CutMix: exact mixed pixels and labels, the CutMix box and its label weight,
the switches, the pipeline's determinism and process sharding, soft-label training."""

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import digits_config

from cnn_jax.data import mixing as M
from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline, Sharding
from cnn_jax.errors import UserError


def _batch(n=4, h=20, w=16, classes=3):
    """n distinct images (every pixel differs between any two) and labels 0, 1, 2, 0, ..."""
    images = tf.constant(
        np.arange(n * h * w * 2, dtype=np.float32).reshape(n, h, w, 2) * 0.5
        + 1000 * np.arange(n, dtype=np.float32)[:, None, None, None]
    )
    labels = tf.constant(np.arange(n) % classes, tf.int32)
    return images, labels


def test_mixup_by_hand():
    images = tf.constant([[[[10.0]], [[20.0]]], [[[110.0]], [[0.0]]]])  # 2 images of 2x1 pixels
    targets = tf.one_hot([0, 2], 3)
    mixed, soft = M.mixup(images, targets, 0.7)
    np.testing.assert_allclose(
        mixed.numpy().ravel(), [0.7 * 10 + 0.3 * 110, 0.7 * 20, 0.7 * 110 + 0.3 * 10, 0.3 * 20], rtol=1e-6
    )
    np.testing.assert_allclose(soft.numpy(), [[0.7, 0, 0.3], [0.3, 0, 0.7]], rtol=1e-6)


def test_cutmix_box_and_its_label_weight():
    # lambda 0.64: sides int(10 * 0.6) = 6, three pixels each side of the centre.
    assert M.cutmix_box(0.64, (5, 5), 10, 10).numpy().tolist() == [2, 2, 8, 8]
    # Clipped at the corner: 3x3 of the 6x6 box remain, so the label weight is 1 - 9/100.
    box = M.cutmix_box(0.64, (0, 0), 10, 10)
    assert box.numpy().tolist() == [0, 0, 3, 3]
    images = tf.reshape(tf.range(200.0), [2, 10, 10, 1])
    mixed, soft, lam = M.cutmix(images, tf.one_hot([1, 0], 2), box)
    assert float(lam) == pytest.approx(0.91)
    np.testing.assert_allclose(soft.numpy(), [[0.09, 0.91], [0.91, 0.09]], rtol=1e-6)
    m = mixed.numpy()[..., 0]
    np.testing.assert_array_equal(m[0, :3, :3], [[100, 101, 102], [110, 111, 112], [120, 121, 122]])
    np.testing.assert_array_equal(m[1, :3, :3], [[0, 1, 2], [10, 11, 12], [20, 21, 22]])
    assert (m[0] != images.numpy()[0, ..., 0]).sum() == 9 and (m[1] != images.numpy()[1, ..., 0]).sum() == 9
    # An odd side (int(10 * 0.7) = 7) is halved to 3 per side, as in the reference: weight 1 - 36/100.
    _, _, lam = M.cutmix(images, tf.one_hot([1, 0], 2), M.cutmix_box(0.51, (5, 5), 10, 10))
    assert float(lam) == pytest.approx(0.64)


def test_random_cutmix_label_weight_is_the_pasted_area():
    images, labels = _batch(classes=4)  # labels 0 1 2 3: no pair shares a class
    cut, weights = M.Mixing(cutmix_alpha=1.0), []
    for i in range(12):
        mixed, soft = cut(images, labels, tf.constant([4, i], tf.int64), 4)
        kept = (mixed.numpy() == images.numpy()).all(-1).mean(axis=(1, 2))  # fraction not pasted over
        np.testing.assert_allclose(soft.numpy()[np.arange(4), labels.numpy()], kept, atol=1e-6)
        np.testing.assert_allclose(soft.numpy().sum(-1), 1.0, rtol=1e-6)
        weights.append(kept[0])
    assert len(set(np.round(weights, 4))) >= 6 and min(weights) < 0.8


def test_random_mixup_matches_its_label_weight():
    images, labels = _batch(classes=4)  # labels 0 1 2 3: every pair is mixed
    mixed, soft = M.Mixing(mixup_alpha=0.2)(images, labels, tf.constant([9, 1], tf.int64), 4)
    lam = soft.numpy()[0, 0]
    assert 0 < lam < 1 and np.allclose(soft.numpy()[0], [lam, 1 - lam, 0, 0], atol=1e-6)
    x = images.numpy()
    np.testing.assert_allclose(mixed.numpy()[0], lam * x[0] + (1 - lam) * x[1], rtol=1e-5)
    np.testing.assert_allclose(mixed.numpy()[3], lam * x[3] + (1 - lam) * x[2], rtol=1e-5)


def test_alpha_zero_and_prob_zero_leave_the_images_unchanged():
    images, labels = _batch()
    assert not M.Mixing().enabled and not M.Mixing(0.0, 0.0, 1.0).enabled
    for mixing in (M.Mixing(), M.Mixing(mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.0)):
        out, soft = mixing(images, labels, tf.constant([1, 2], tf.int64), 3)
        np.testing.assert_array_equal(out.numpy(), images.numpy())
        np.testing.assert_array_equal(soft.numpy(), np.eye(3)[labels.numpy()])


def test_switch_picks_both_methods():
    images, labels = _batch(classes=4)
    both = M.Mixing(mixup_alpha=1.0, cutmix_alpha=1.0)
    kinds = set()
    for i in range(16):
        mixed = both(images, labels, tf.constant([2, i], tf.int64), 4)[0].numpy()
        changed = (mixed != images.numpy()).mean()
        kinds.add("mixup" if changed == 1.0 else "cutmix")
    assert kinds == {"mixup", "cutmix"}


@pytest.mark.parametrize(
    "kw,key",
    [({"mixup_alpha": -0.1}, "mixup_alpha"), ({"prob": 1.5}, "mix_prob"), ({"switch_prob": -1}, "mix_switch_prob")],
)
def test_bad_values_are_user_errors(kw, key):
    with pytest.raises(UserError, match=f"data.{key} is .*--config.data.{key}"):
        M.Mixing(**kw)


def test_pipeline_mixes_deterministically_and_any_process_count_sees_the_same(data_dir):
    src = open_source("digits", data_dir)
    cfg = dict(mixup_alpha=0.4, cutmix_alpha=1.0)
    single = list(Pipeline(src, digits_config(32, **cfg)).train_epoch(epoch=1).take(3).as_numpy_iterator())
    again = list(Pipeline(src, digits_config(32, **cfg)).train_epoch(epoch=1).take(3).as_numpy_iterator())
    parts = [Pipeline(src, digits_config(32, **cfg), Sharding(p, 2)).train_epoch(epoch=1).take(3) for p in range(2)]
    plain = list(Pipeline(src, digits_config(32)).train_epoch(epoch=1).take(3).as_numpy_iterator())
    changes = []
    for whole, rerun, a, b, base in zip(single, again, *parts, plain):
        assert set(whole) == {"image", "label"} and whole["label"].shape == (32, 10)
        np.testing.assert_array_equal(whole["image"], rerun["image"])
        np.testing.assert_array_equal(whole["image"], np.concatenate([a["image"], b["image"]]))
        np.testing.assert_array_equal(whole["label"], np.concatenate([a["label"], b["label"]]))
        # Neighbours 2k, 2k+1 of the unmixed batch are mixed with one weight for the whole batch.
        y, y_partner, rows = base["label"], base["label"][np.arange(32) ^ 1], np.arange(32)
        differ = y != y_partner
        own, other = whole["label"][rows, y][differ], whole["label"][rows, y_partner][differ]
        np.testing.assert_allclose(own, own[0], rtol=1e-6)
        np.testing.assert_allclose(own + other, 1.0, rtol=1e-6)
        np.testing.assert_allclose(whole["label"][~differ].max(-1), 1.0, rtol=1e-6)
        changes.append(np.abs(whole["image"] - base["image"]).max())
    assert max(changes) > 0.1


def test_alpha_zero_keeps_the_unmixed_pipeline_exactly(data_dir):
    src = open_source("digits", data_dir)
    off = Pipeline(src, digits_config(32, mixup_alpha=0.0, cutmix_alpha=0.0, randaugment="")).train_epoch(epoch=0)
    default = Pipeline(src, digits_config(32)).train_epoch(epoch=0)
    for a, b in zip(off.take(2).as_numpy_iterator(), default.take(2).as_numpy_iterator()):
        assert a["label"].dtype == b["label"].dtype == np.int32 and a["label"].shape == (32,)
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])


def test_odd_per_process_batch_is_refused(data_dir):
    src = open_source("digits", data_dir)
    with pytest.raises(UserError, match="must be even.*multiple of 4"):
        Pipeline(src, digits_config(30, mixup_alpha=0.2), Sharding(0, 2)).train_epoch(0)


def test_cross_entropy_takes_soft_labels():
    import jax.numpy as jnp

    from cnn_jax.train.steps import cross_entropy

    logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    hard = cross_entropy(logits, jnp.array([0, 2]))
    np.testing.assert_allclose(cross_entropy(logits, jnp.eye(3)[jnp.array([0, 2])]), hard, rtol=1e-6)
    logp = np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    soft = jnp.array([[0.7, 0.3, 0.0], [0.0, 0.25, 0.75]])
    np.testing.assert_allclose(cross_entropy(logits, soft), -(np.asarray(soft) * logp).sum(-1), rtol=1e-5)
    # Label smoothing applies to soft targets too: (1 - 0.1) * t + 0.1 / 3.
    smoothed = 0.9 * np.asarray(soft) + 0.1 / 3
    np.testing.assert_allclose(cross_entropy(logits, soft, 0.1), -(smoothed * logp).sum(-1), rtol=1e-5)


MIXED = ["--config", "configs/lenet5.py", "--config.data.mixup_alpha=0.2", "--config.data.cutmix_alpha=1.0"]


def _steps(n, every):
    return [
        f"--config.num_train_steps={n}",
        f"--config.log_every_steps={every}",
        f"--config.eval_every_steps={n}",
        f"--config.checkpoint_every_steps={n}",
    ]


def test_mixed_training_is_the_same_on_one_and_eight_devices(tmp_path, data_dir, capsys):
    from conftest import run_cli
    from helpers import train_losses

    args = ["train", *MIXED, "--config.data.randaugment=2,9", *_steps(6, 1)]
    assert run_cli(args + ["--workdir", tmp_path / "one", "--num-devices", "1"], capsys)[0] == 0
    assert run_cli(args + ["--workdir", tmp_path / "eight"], capsys)[0] == 0
    one, eight = train_losses(tmp_path / "one"), train_losses(tmp_path / "eight")
    assert sorted(one) == sorted(eight) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([one[s] for s in range(1, 7)], [eight[s] for s in range(1, 7)], rtol=1e-5)
    config = json.loads((tmp_path / "one" / "config.json").read_text())["data"]
    assert (config["mixup_alpha"], config["cutmix_alpha"], config["randaugment"], config["mix_prob"]) == (
        0.2,
        1.0,
        "2,9",
        None,
    )


def test_digits_training_with_mixup_and_cutmix_learns(tmp_path, data_dir, capsys):
    # LeNet-5 at lr 0.006 for 90 steps (about 2 epochs) with Mixup and CutMix on every batch:
    # the loss falls from 2.35 to about 1.1 (mixed labels keep it well above 0), top-1 about 85%.
    from conftest import run_cli
    from helpers import train_losses

    args = ["train", *MIXED, "--config.optimizer.lr=0.006", "--config.schedule.name=constant", *_steps(90, 10)]
    assert run_cli(args + ["--workdir", tmp_path / "run", "--num-devices", "1"], capsys)[0] == 0
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == list(range(10, 91, 10)) and all(np.isfinite(list(losses.values())))
    assert losses[10] > 2.2 and losses[90] < 0.6 * losses[10]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["top1"] > 0.7
