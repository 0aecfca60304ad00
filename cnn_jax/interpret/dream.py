"""Gradient ascent on the input: class-model visualisation and DeepDream.

Simonyan, Vedaldi & Zisserman 2014 (Sec. 2) find the image I maximising
S_c(I) - lambda ||I||^2, the class score with an L2 penalty, starting from the
zero (mean) image. DeepDream (Mordvintsev, Olah & Tyka 2015) starts from a photo
and maximises a layer's mean activation, with two regularisers used here too:
random jitter (the image is rolled by a few pixels before each step, so detail cannot
lock onto the pixel grid) and octaves (the ascent runs first on a downscaled copy,
then on successively larger ones, each adding the detail found so far to the
rescaled original).

Our models take a fixed input size (the dense heads of VGG and LeNet), so at a
coarse octave the optimised image is smaller and is bilinearly upsampled to the
model's input size in the forward pass: coarse octaves shape the low frequencies.
Each step is normalised by the mean absolute gradient of its image, so `step_size`
is the mean change of a pixel per step, in the model's input units.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cnn_jax.interpret.attribution import forward_with_layer, logits_fn


class Dream(NamedTuple):
    images: jax.Array  # (N, H, W, C): the optimised images
    history: jax.Array  # (octaves * steps, N): the objective (jittered) before each step
    final: jax.Array  # (N,): the objective of the optimised images, no jitter


def objective(model, variables, images, targets=None, layer=None):
    """Per image: the target class logit, or the mean activation of `layer` if given."""
    if layer is not None:
        act = forward_with_layer(model, variables, images, layer)[1]
        return act.reshape(act.shape[0], -1).astype(jnp.float32).mean(axis=1)
    logits = logits_fn(model)(variables, images)
    return jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]


def octave_sizes(h: int, w: int, octaves: int, scale: float) -> list:
    return [
        (max(1, round(h / scale ** (octaves - 1 - o))), max(1, round(w / scale ** (octaves - 1 - o))))
        for o in range(octaves)
    ]


def _resize(x, hw):
    return x if x.shape[1:3] == tuple(hw) else jax.image.resize(x, (x.shape[0], *hw, x.shape[3]), "bilinear")


@functools.partial(jax.jit, static_argnames=("model", "layer", "steps", "octaves", "octave_scale", "jitter"))
def dream(
    model,
    variables,
    images,
    targets=None,
    *,
    key,
    layer: str | None = None,
    steps: int = 20,
    step_size: float = 0.01,
    octaves: int = 3,
    octave_scale: float = 1.4,
    jitter: int = 2,
    l2: float = 0.0,
    clip=None,
) -> Dream:
    """Gradient ascent from `images` on the class logit `targets` (or, with `layer`, on
    that layer's mean activation) minus l2 * ||x||^2. `clip=(low, high)` (scalars or one
    value per channel) keeps pixels in the range the preprocessing can produce."""
    if layer is None and targets is None:
        raise ValueError("dream needs target classes or a layer.")
    n, h, w, c = images.shape

    def penalised(x, shift):
        seen = jnp.roll(_resize(x, (h, w)), shift, axis=(1, 2))
        obj = objective(model, variables, seen, targets, layer)
        return obj.sum() - l2 * jnp.sum(x.astype(jnp.float32) ** 2), obj

    def step(x, k):
        shift = jax.random.randint(k, (2,), -jitter, jitter + 1)
        (_, obj), g = jax.value_and_grad(penalised, has_aux=True)(x, shift)
        x = x + step_size * g / (jnp.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-12)
        if clip is not None:
            x = jnp.clip(x, clip[0], clip[1])
        return x, obj

    sizes = octave_sizes(h, w, octaves, octave_scale)
    detail, history = jnp.zeros((n, *sizes[0], c), images.dtype), []
    for hw, k in zip(sizes, jax.random.split(key, octaves)):
        base = _resize(images, hw)
        x, obj = jax.lax.scan(step, base + _resize(detail, hw), jax.random.split(k, steps))
        detail = x - base
        history.append(obj)
    x = _resize(x, (h, w))
    return Dream(x, jnp.concatenate(history), objective(model, variables, x, targets, layer))
