"""Test-time evaluation protocols (pure JAX, jittable, batched NHWC).

Each protocol is `protocol(apply_fn, images, ...) -> (N, K)` scores, where
`apply_fn(batch) -> logits` is the model closed over its variables:
`functools.partial(model.apply, variables, train=False)`. The protocol decides
which views of each image the network sees and how their scores are combined.

* `center`: the batch is already the single centre crop (`Recipe.eval`).
* `ten_crop`: the four corner crops and the centre crop of the resized square
  (`Recipe.eval_square`, e.g. 256x256 for 224 crops), plus their mirror images.
  This is AlexNet's protocol, and ResNet's "standard 10-crop".
* `dense`: VGG Sec. 3.2. The network runs fully convolutionally over the whole
  (square) image at one or more scales Q and over its mirror image. Score maps
  are averaged spatially, then over flips and scales.

Averaging. The issue specifies averaging **logits** (`average="logits"`, the
default). AlexNet, GoogLeNet and VGG averaged softmax *probabilities*;
`average="softmax"` does that and returns log(mean p), which orders classes like
mean p and can be fed to the same top-k/cross-entropy code as logits. Top-1 can
differ between the two by a few hundredths of a percent.

Views are evaluated by `jax.lax.map` with `views_per_call` views at a time. The
network is traced once, and memory stays that of `views_per_call` batches; raise
it on accelerators with memory to spare.
"""

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from cnn_jax.errors import UserError, did_you_mean

AVERAGES = ("logits", "softmax")


def _scores(logits):
    """Model output -> (N, K); a class score map (N, h, w, K) is averaged spatially."""
    logits = jnp.asarray(logits, jnp.float32)
    return logits.mean(axis=(1, 2)) if logits.ndim == 4 else logits


def combine(view_logits, average: str = "logits"):
    """(V, N, K) scores of V views -> (N, K): mean logits, or log of mean softmax."""
    if average == "logits":
        return view_logits.mean(axis=0)
    if average == "softmax":
        log_p = jax.nn.log_softmax(view_logits, axis=-1)
        return jax.nn.logsumexp(log_p, axis=0) - jnp.log(view_logits.shape[0])
    raise UserError(f"Unknown score averaging {average!r}; choose one of {AVERAGES}.")


def _apply_views(apply_fn, views, views_per_call: int):
    """(V, N, H, W, C) -> (V, N, K), one traced copy of the network for all views."""
    batch = None if views_per_call <= 1 else views_per_call
    return jax.lax.map(lambda v: _scores(apply_fn(v)), views, batch_size=batch)


def flip(images):
    """Horizontal mirror of an NHWC batch."""
    return images[:, :, ::-1, :]


def center(apply_fn: Callable, images):
    """Single view: the batch is already the centre crop (`Recipe.eval`)."""
    return _scores(apply_fn(images))


def ten_crop_views(images, crop: int):
    """(10, N, crop, crop, C): top-left, top-right, bottom-left, bottom-right, centre,
    then the same five mirrored. The centre offset is floored, as in `augment.center_crop`."""
    h, w = images.shape[1:3]
    if crop > min(h, w):
        raise UserError(
            f"10-crop size {crop} is larger than the {h}x{w} evaluation images; resize them to at least the crop size."
        )
    cy, cx = (h - crop) // 2, (w - crop) // 2
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), (cy, cx)]
    five = [images[:, y : y + crop, x : x + crop, :] for y, x in corners]
    return jnp.stack(five + [flip(v) for v in five])


def ten_crop(apply_fn: Callable, images, crop: int, average: str = "logits", views_per_call: int = 1):
    """AlexNet's 10-crop scores of a batch of resized squares (e.g. 256 -> crops of 224)."""
    return combine(_apply_views(apply_fn, ten_crop_views(images, crop), views_per_call), average)


def resize_shorter_side(images, size: int):
    """Bilinear (antialiased) NHWC resize so that min(H, W) == size, as in `augment`."""
    n, h, w, c = images.shape
    if min(h, w) == size:
        return images
    new_h, new_w = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    return jax.image.resize(images, (n, new_h, new_w, c), "bilinear", antialias=True)


def dense(
    apply_fn: Callable,
    images,
    scales: Sequence[int] | None = None,
    flips: bool = True,
    average: str = "logits",
    views_per_call: int = 1,
):
    """VGG dense evaluation. `apply_fn` must take any input size >= the training crop and
    return logits (N, K) or a class score map (N, h, w, K), which is averaged spatially.
    `scales` are the test scales Q (the shorter side each view is resized to); None uses
    the images as they are. Give images at least as large as the largest Q."""
    per_view = []
    for q in scales or (None,):
        x = images if q is None else resize_shorter_side(images, int(q))
        views = jnp.stack([x, flip(x)]) if flips else x[None]
        per_view.append(_apply_views(apply_fn, views, views_per_call))  # shapes differ per Q
    return combine(jnp.concatenate(per_view), average)


def vgg_test_scales(train_scale_range) -> tuple:
    """VGG Table 4's multi-scale test set: {S-32, S, S+32} for a fixed S, and
    {S_min, (S_min+S_max)/2, S_max} for scale-jittered training."""
    lo, hi = train_scale_range
    return (lo - 32, lo, lo + 32) if lo == hi else (lo, (lo + hi) // 2, hi)


PROTOCOLS = {"center": center, "10crop": ten_crop, "dense": dense}


def get_protocol(name: str) -> Callable:
    """The protocol function by its CLI name (`--protocol center|10crop|dense`)."""
    key = {"ten_crop": "10crop", "centre": "center"}.get(name, name)
    if key not in PROTOCOLS:
        raise UserError(
            f"Unknown evaluation protocol {name!r}{did_you_mean(name, PROTOCOLS)}; "
            f"choose one of {', '.join(PROTOCOLS)}."
        )
    return PROTOCOLS[key]


def jit_protocol(name: str, model_apply: Callable, **kwargs) -> Callable:
    """Compiled `(variables, images) -> scores`, for `model_apply(variables, images) -> logits`
    (e.g. `lambda v, x: model.apply(v, x, train=False)`). The variables stay arguments
    rather than constants baked into the compiled program."""
    protocol = get_protocol(name)

    def run(variables, images):
        return protocol(functools.partial(model_apply, variables), images, **kwargs)

    return jax.jit(run)
