"""Interpretability methods on cases with known answers, and `cnn-jax explain` end to end.

The known-answer network multiplies its input by a fixed mask, so it only ever sees one
rectangle of the image (rows 4-11, columns 18-27): every attribution method must put its
mass there. Its weights are set so that class 0's logit grows with the activations.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_cli

from cnn_jax import models
from cnn_jax.errors import UserError
from cnn_jax.interpret import attribution as I
from cnn_jax.interpret.dream import dream
from cnn_jax.interpret.guided import count_guided_activations, guided

H = W = 32
ROWS, COLS = slice(4, 12), slice(18, 28)


def region(dilate: int = 0) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[ROWS.start - dilate : ROWS.stop + dilate, COLS.start - dilate : COLS.stop + dilate] = True
    return m


class SeesOneRegion(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = x * jnp.asarray(region(), x.dtype)[None, :, :, None]
        x = nn.relu(nn.Conv(4, (3, 3), name="conv")(x))
        return nn.Dense(3, name="head")(x.mean(axis=(1, 2)))


@pytest.fixture(scope="module")
def net():
    model = SeesOneRegion()
    images = jax.random.uniform(jax.random.key(0), (2, H, W, 3))
    params = model.init(jax.random.key(1), images)["params"]
    params["conv"]["kernel"] = jnp.abs(params["conv"]["kernel"])
    params["head"]["kernel"] = params["head"]["kernel"].at[:, 0].set(1.0)
    return model, {"params": params}, images, jnp.zeros(2, jnp.int32)


def inside_fraction(maps, mask) -> float:
    maps = np.asarray(maps)
    return float(maps[:, mask].sum() / maps.sum())


def argmax_inside(maps, mask) -> bool:
    return all(mask[np.unravel_index(np.argmax(m), m.shape)] for m in np.asarray(maps))


def test_saliency_and_smoothgrad_live_in_the_seen_region(net):
    model, variables, images, targets = net
    plain = I.saliency(model, variables, images, targets)
    smooth = I.saliency(model, variables, images, targets, jax.random.key(2), samples=8, noise=0.2)
    assert plain.shape == smooth.shape == (2, H, W)
    # The mask zeroes the gradient outside the region exactly.
    assert inside_fraction(plain, region()) == 1.0 and inside_fraction(smooth, region()) == 1.0
    assert argmax_inside(plain, region()) and argmax_inside(smooth, region())


def test_gradcam_peaks_in_the_seen_region(net):
    model, variables, images, targets = net
    cam = I.gradcam(model, variables, images, targets, "conv")
    assert cam.shape == (2, H, W) and float(cam.min()) >= 0.0
    # The 3x3 convolution sees one pixel beyond the region; bilinear upsampling is the identity here.
    assert inside_fraction(cam, region(dilate=1)) > 0.999
    assert inside_fraction(cam, region()) > 0.8 and argmax_inside(cam, region())
    with pytest.raises(UserError, match="closest are 'conv'"):
        I.gradcam(model, variables, images, targets, "convv")


def test_occlusion_only_matters_over_the_seen_region(net):
    model, variables, images, targets = net
    patch, stride = 4, 2
    occ = I.occlusion(model, variables, images, targets, patch=patch, stride=stride)
    starts = I.patch_starts(H, patch, stride)
    assert starts == tuple(range(0, 29, 2)) and occ.probs.shape == (2, 15, 15) and occ.heat.shape == (2, H, W)
    logits = model.apply(variables, images)
    np.testing.assert_allclose(occ.base, jax.nn.softmax(logits)[:, 0], rtol=1e-6)
    # A patch that misses the region changes nothing: zero drop beyond patch-1 pixels of it.
    assert float(jnp.abs(occ.heat[:, ~region(dilate=patch - 1)]).max()) == 0.0
    assert argmax_inside(occ.heat, region()) and float(occ.heat.max()) > 0.01
    assert inside_fraction(jnp.maximum(occ.heat, 0), region(dilate=patch - 1)) == 1.0


class Gate(nn.Module):
    """Class-0 logit = sum(w * act(x)) with w of both signs. `act` is a field whose default
    is bound at class definition, as in ConvBN: patching jax.nn.relu would not reach it."""

    act: object = nn.relu

    @nn.compact
    def __call__(self, x, train=False):
        w = self.param("w", lambda k, s: jax.random.normal(k, s), x.shape[1:])
        score = jnp.sum(w * self.act(x), axis=(1, 2, 3))
        return jnp.stack([score, -score], axis=1)


@pytest.fixture(scope="module")
def gate():
    model = Gate()
    x = jax.random.normal(jax.random.key(3), (2, 6, 6, 2))
    return model, model.init(jax.random.key(4), x), x, jnp.zeros(2, jnp.int32)


def test_guided_backprop_gates_by_activation_and_gradient_sign(gate):
    model, variables, x, targets = gate
    w = variables["params"]["w"]
    plain = I.input_gradients(model, variables, x, targets)
    gb = I.guided_backprop(model, variables, x, targets)
    np.testing.assert_array_equal(plain, w * (x > 0))
    np.testing.assert_array_equal(gb, w * (x > 0) * (w > 0))
    assert float(gb.min()) == 0.0 and float(plain.min()) < 0.0
    assert count_guided_activations(I.logits_fn(model), variables, x) == {"relu": 1}


def test_smoothgrad_is_the_expected_gradient_under_noise(gate):
    # E[d relu(x + n)/dx] = P(x + n > 0) = Phi(x / sigma), sigma = noise * (max - min) of the image.
    model, variables, x, targets = gate
    w, noise = np.asarray(variables["params"]["w"]), 0.2
    smooth = I.input_gradients(model, variables, x, targets, jax.random.key(7), samples=256, noise=noise)
    sigma = noise * (np.asarray(x).max(axis=(1, 2, 3)) - np.asarray(x).min(axis=(1, 2, 3)))[:, None, None, None]
    expected = w * np.asarray(jax.scipy.stats.norm.cdf(np.asarray(x) / sigma))
    assert float(np.abs(np.asarray(smooth) - expected).max()) < 0.15 * float(np.abs(w).max())
    assert float(np.abs(np.asarray(smooth) - w * (np.asarray(x) > 0)).max()) > 0.3 * float(np.abs(w).max())


def random_variables(model, input_shape, seed: int = 0):
    """He-normal kernels, unit BN statistics: without `model.init`, whose compile costs
    seconds per model."""
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = path[-1].key
        if name in ("var", "scale"):
            return np.ones(s.shape, np.float32)
        if name == "mean":
            return np.zeros(s.shape, np.float32)
        std = np.sqrt(2.0 / np.prod(s.shape[:-1])) if len(s.shape) > 1 else 0.1
        return (rng.normal(size=s.shape) * std).astype(np.float32)

    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(input_shape)))
    return jax.tree_util.tree_map_with_path(fill, abstract)


def test_guided_backprop_on_resnet20_keeps_the_forward_and_changes_the_gradient():
    model = models.create_model("resnet20", num_classes=10)
    x = jax.random.normal(jax.random.key(5), (1, 16, 16, 3))
    variables = random_variables(model, x.shape)
    f = I.logits_fn(model)
    # The stem, 2 per block (one in ConvBN's `act` field, one after the residual add) x 9 blocks.
    assert count_guided_activations(f, variables, x) == {"relu": 19}
    np.testing.assert_allclose(jax.jit(guided(f))(variables, x), jax.jit(f)(variables, x), rtol=1e-5)
    targets = jnp.array([3])
    plain, gb = I.input_gradients(model, variables, x, targets), I.guided_backprop(model, variables, x, targets)
    assert gb.shape == x.shape and float(jnp.abs(gb - plain).max()) > 1e-3 * float(jnp.abs(plain).max())


def test_filter_grid_has_one_tile_per_first_layer_kernel():
    lenet = models.create_model("lenet5")
    v = random_variables(lenet, (1, 32, 32, 1))
    path, kernel = I.first_conv(lenet, v, (1, 32, 32, 1))
    assert path == "C1" and kernel.shape == (5, 5, 1, 6)
    grid = I.filter_grid(kernel)
    assert I.grid_shape(6) == (2, 3) and grid.shape == (2 * 6 + 1, 3 * 6 + 1, 1)
    k0 = np.asarray(kernel[:, :, 0, 0])
    np.testing.assert_allclose(grid[1:6, 1:6, 0], 0.5 + 0.5 * k0 / np.abs(k0).max(), atol=1e-6)
    resnet = models.create_model("resnet20", num_classes=10)
    v = random_variables(resnet, (1, 32, 32, 3))
    path, kernel = I.first_conv(resnet, v, (1, 32, 32, 3))
    assert path == "stem/conv" and I.filter_grid(kernel).shape == (4 * 4 + 1, 4 * 4 + 1, 3)


def test_activations_of_named_layers():
    lenet = models.create_model("lenet5")
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 1))
    v = random_variables(lenet, x.shape)
    assert I.layer_activations(lenet, v, x, "C3").shape == (2, 10, 10, 16)
    assert I.activation_grid(I.layer_activations(lenet, v, x, "C1")[0]).shape == (2 * 29 + 1, 3 * 29 + 1, 1)
    resnet = models.create_model("resnet20", num_classes=10)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    v = random_variables(resnet, x.shape)
    layers = I.list_layers(resnet, v, x.shape)
    assert layers["stage2_block1/conv1"] == (2, 16, 16, 32) and I.feature_layers(layers)[-1] == "stage3_block3"
    act = I.layer_activations(resnet, v, x, "stage2_block1/conv1")
    assert act.shape == (2, 16, 16, 32) and float(act.min()) >= 0.0  # ConvBN ends with its ReLU
    with pytest.raises(UserError, match="'stage2_block1/conv1'"):
        I.layer_activations(resnet, v, x, "stage2_blok1/conv1")


def test_dream_raises_the_class_logit_and_a_layer_activation(net):
    model, variables, images, targets = net
    start = model.apply(variables, images)[:, 0]
    d = dream(
        model,
        variables,
        images,
        targets,
        key=jax.random.key(0),
        steps=8,
        octaves=2,
        step_size=0.05,
        l2=1e-3,
        clip=(0.0, 1.0),
    )
    assert d.images.shape == images.shape and d.history.shape == (16, 2)
    assert float(d.images.min()) >= 0.0 and float(d.images.max()) <= 1.0
    assert np.all(np.asarray(d.final) > np.asarray(start) + 0.5)
    assert np.all(np.asarray(d.history[-1]) > np.asarray(d.history[0]))
    before = I.layer_activations(model, variables, images, "conv").mean(axis=(1, 2, 3))
    d = dream(model, variables, images, layer="conv", key=jax.random.key(1), steps=5, octaves=1, step_size=0.05)
    assert np.all(np.asarray(d.final) > np.asarray(before))


def _digit_png(path, index: int = 3):
    from PIL import Image
    from sklearn.datasets import load_digits

    from cnn_jax.data.digits.digits import upsample

    Image.fromarray(upsample(load_digits().images[index])[..., 0]).save(path)
    return path


def test_explain_end_to_end(tmp_path, data_dir, root, capsys):
    from PIL import Image

    wd = tmp_path / "wd"
    assert (
        run_cli(
            [
                "train",
                "--config",
                f"{root}/configs/lenet5.py",
                "--config.num_train_steps=6",
                "--config.checkpoint_every_steps=6",
                "--config.eval_every_steps=6",
                "--workdir",
                wd,
            ],
            capsys,
        )[0]
        == 0
    )
    image = _digit_png(tmp_path / "digit.png")
    common = ["explain", "--workdir", wd, "--image", image]
    code, out, _ = run_cli(common + ["--method", "gradcam", "--class", "3", "--out", tmp_path / "cam.png"], capsys)
    # Two 32x32 panels enlarged 7x (224 px) with a 4-pixel gap.
    assert code == 0 and "layer 'S4'" in out and "for class 3" in out
    assert Image.open(tmp_path / "cam.png").size == (2 * 224 + 4, 224)
    code, out, _ = run_cli(common + ["--method", "filters", "--out", tmp_path / "f.png"], capsys)
    # Six 5x5 filters in a 2x3 grid with 1-pixel borders, enlarged 48 // 5 = 9 times.
    assert code == 0 and Image.open(tmp_path / "f.png").size == ((3 * 6 + 1) * 9, (2 * 6 + 1) * 9)
    code, _, err = run_cli(
        common[:3] + ["--image", tmp_path / "none.png", "--method", "saliency", "--out", tmp_path / "x.png"], capsys
    )
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(common + ["--method", "activations", "--layer", "C33", "--out", tmp_path / "x.png"], capsys)
    assert code == 2 and "'C33' is not a layer" in err and "'C3'" in err and not (tmp_path / "x.png").exists()
