"""`cnn-jax explain`: one image through a trained workdir's network, and one picture of why.

    cnn-jax explain --workdir W --image IMG --method METHOD [--layer PATH] [--class K] --out OUT.png

The image is preprocessed with the run's own evaluation recipe (resize, centre crop,
normalisation) at its input size S. The class explained is --class, or the predicted
one. The PNG is composed pixel for pixel (`images.py`); with the enlargement factor
k = --scale (default: round(224 / S), at least 1), its panels are:

    saliency, smoothgrad   input | |gradient| over the input         2 panels of kS x kS
    guided                 input | guided-backprop gradient (grey 0)  2 panels
    gradcam                input | Grad-CAM of --layer over the input 2 panels
    occlusion              input | drop of the class probability      2 panels
    dream                  start | image after gradient ascent        2 panels
    filters                grid of the first convolution's filters    (default k: 48 / kernel size)
    activations            grid of --layer's channels for this image  (default k: 64 / map size)

Panels are separated by 4 white columns. Default layers: Grad-CAM uses the deepest feature
map larger than 1x1, activations the first one; dream maximises the class logit, or
--layer's mean activation when a layer is given.
"""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.errors import UserError
from cnn_jax.interpret import attribution as I
from cnn_jax.interpret import images as img
from cnn_jax.weights.networks import load_trained

METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion", "guided", "filters", "activations", "dream")


@dataclasses.dataclass
class Case:
    """What every method needs: the network, one preprocessed image and the class."""

    model: object
    variables: dict
    x: jax.Array  # (1, S, S, C) in the model's input scale
    target: int
    layers: dict  # list_layers(...)
    recipe: object
    args: object  # the options cnn_jax.cli.explain parsed

    @property
    def targets(self):
        return jnp.array([self.target], jnp.int32)

    def display(self, x) -> np.ndarray:
        """Model input -> RGB in [0, 1] for showing (undoes the normalisation)."""
        lo, hi = pixel_range(self.recipe, x.shape[-1])
        shown = (np.asarray(x, np.float32) - lo) / (hi - lo)
        return np.clip(shown[..., ::-1] if self.recipe.normalization == "caffe" else shown, 0.0, 1.0)

    def layer_or(self, which: int) -> str:
        """--layer, checked; without it, feature map number `which` (0 first, -1 deepest)."""
        maps = I.feature_layers(self.layers)
        if self.args.layer is None and not maps:
            raise UserError("This model has no feature map larger than 1x1; pass --layer.")
        layer = self.args.layer if self.args.layer is not None else maps[which]
        if layer not in self.layers:
            raise I.unknown_layer(layer, self.layers)
        return layer


def pixel_range(recipe, channels: int) -> tuple:
    """The model-input values of black and white, per channel."""
    lo = np.asarray(recipe.normalize(np.zeros(channels, np.float32)), np.float32)
    hi = np.asarray(recipe.normalize(np.full(channels, 255.0, np.float32)), np.float32)
    return lo, hi


def check_image_exists(path: str) -> pathlib.Path:
    p = pathlib.Path(path)
    if not p.is_file():
        raise UserError(f"Image {path} does not exist; pass --image the path of a PNG or JPEG file.")
    return p


def load_image(path: str, channels: int):
    """A uint8 (H, W, channels) tf image from a PNG, JPEG, GIF or BMP file."""
    import tensorflow as tf

    p = check_image_exists(path)
    try:
        return tf.io.decode_image(tf.io.read_file(str(p)), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        raise UserError(
            f"Image {path} cannot be decoded ({str(e).splitlines()[0][:80]}); pass a PNG, JPEG, GIF or BMP file."
        ) from None


# ---- the methods: each returns the list of panels (or one grid) to write --------------------
def _heat_panels(case: Case, heat) -> list:
    shown = case.display(case.x[0])
    return [shown, img.overlay(shown, np.asarray(heat[0]))]


def _saliency(case: Case, smooth: bool) -> list:
    a = case.args
    grads = I.input_gradients(
        case.model, case.variables, case.x, case.targets, jax.random.key(a.seed), a.samples if smooth else 0, a.noise
    )
    return _heat_panels(case, I.saliency_map(grads))


def _guided(case: Case) -> list:
    from cnn_jax.interpret.guided import count_guided_activations

    if not count_guided_activations(I.logits_fn(case.model), case.variables, case.x):
        print("note: this network has no ReLU, so guided backpropagation equals the plain gradient.")
    grads = np.asarray(I.guided_backprop(case.model, case.variables, case.x, case.targets)[0])
    if case.recipe.normalization == "caffe":
        grads = grads[..., ::-1]
    return [case.display(case.x[0]), img.signed_gradient(grads)]


def _gradcam(case: Case) -> list:
    layer = case.layer_or(-1)
    print(f"Grad-CAM at layer {layer!r} {case.layers[layer][1:]}")
    return _heat_panels(case, I.gradcam(case.model, case.variables, case.x, case.targets, layer))


def _occlusion(case: Case) -> list:
    a, size = case.args, case.x.shape[1]
    patch = a.patch or max(2, size // 8)
    stride = a.stride or max(1, patch // 2)
    lo, hi = pixel_range(case.recipe, case.x.shape[-1])
    result = I.occlusion(case.model, case.variables, case.x, case.targets, patch, stride, fill=(lo + hi) / 2)
    print(
        f"occlusion: {patch}x{patch} grey patch every {stride} px; p(class) {float(result.base[0]):.3f} intact, "
        f"{float(result.probs.min()):.3f} at the most sensitive position"
    )
    return _heat_panels(case, jnp.maximum(result.heat, 0.0))


def _dream(case: Case) -> list:
    from cnn_jax.interpret.dream import dream

    a, size, channels = case.args, case.x.shape[1], case.x.shape[-1]
    lo, hi = pixel_range(case.recipe, channels)
    start = jnp.broadcast_to(jnp.asarray((lo + hi) / 2), case.x.shape) if a.from_grey else case.x
    layer = case.layer_or(0) if a.layer is not None else None
    result = dream(
        case.model,
        case.variables,
        start,
        None if layer else case.targets,
        key=jax.random.key(a.seed),
        layer=layer,
        steps=a.steps,
        octaves=a.octaves,
        step_size=float(a.step_size * np.mean(hi - lo)),
        jitter=max(1, size // 16),
        l2=a.l2,
        clip=(jnp.asarray(lo), jnp.asarray(hi)),
    )
    what = f"mean activation of {layer!r}" if layer else f"logit of class {case.target}"
    print(f"dream: {what} {float(result.history[0, 0]):.3f} -> {float(result.final[0]):.3f}")
    return [case.display(start[0]), case.display(result.images[0])]


def _filters(case: Case) -> np.ndarray:
    path, kernel = I.first_conv(case.model, case.variables, case.x.shape)
    kernel = np.asarray(kernel)
    if case.recipe.normalization == "caffe" and kernel.shape[2] == 3:
        kernel = kernel[:, :, ::-1]  # BGR-trained filters shown in RGB
    print(f"filters of {path!r}: {kernel.shape[3]} of {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}")
    return img.upscale(np.asarray(I.filter_grid(kernel)), case.args.scale or max(1, 48 // kernel.shape[0]))


def _activations(case: Case) -> np.ndarray:
    layer = case.layer_or(0)
    act = I.layer_activations(case.model, case.variables, case.x, layer)
    if act.ndim != 4:
        raise UserError(
            f"Layer {layer!r} outputs shape {tuple(act.shape)}, not a feature map; pick a convolutional layer."
        )
    print(f"activations of {layer!r}: {act.shape[3]} maps of {act.shape[1]}x{act.shape[2]}")
    return img.upscale(np.asarray(I.activation_grid(act[0])), case.args.scale or max(1, 64 // act.shape[1]))


PANELS = {
    "saliency": lambda c: _saliency(c, False),
    "smoothgrad": lambda c: _saliency(c, True),
    "guided": _guided,
    "gradcam": _gradcam,
    "occlusion": _occlusion,
    "dream": _dream,
}
GRIDS = {"filters": _filters, "activations": _activations}


def explain(a) -> int:
    """Write the picture `a.method` asks for (`a`: the options cnn_jax.cli.explain parses)."""
    workdir = pathlib.Path(a.workdir)
    check_image_exists(a.image)  # before the slow part
    from cnn_jax.train.reporting import setup_logging

    setup_logging(None)
    run, variables, step = load_trained(workdir, a.step)
    recipe, size, channels = run.pipeline.recipe, run.pipeline.size, run.pipeline.channels
    x = jnp.asarray(recipe.eval(load_image(a.image, channels), size).numpy())[None]
    probs = jax.nn.softmax(I.logits_fn(run.model)(variables, x)[0])
    predicted = int(jnp.argmax(probs))
    target = predicted if a.class_ is None else a.class_
    if not 0 <= target < probs.shape[0]:
        raise UserError(f"--class {target} is out of range; this model has classes 0 to {probs.shape[0] - 1}.")
    case = Case(run.model, variables, x, target, I.list_layers(run.model, variables, x.shape), recipe, a)
    if a.method in GRIDS:
        picture = GRIDS[a.method](case)
    else:
        k = a.scale or max(1, round(224 / size))
        picture = img.side_by_side([img.upscale(p, k) for p in PANELS[a.method](case)])
    out = img.save_png(a.out, picture)
    print(
        f"{run.config.model} step {step}: predicted class {predicted} (p={float(probs[predicted]):.3f}); "
        f"{a.method} for class {target} -> {out} ({picture.shape[1]}x{picture.shape[0]})"
    )
    return 0
