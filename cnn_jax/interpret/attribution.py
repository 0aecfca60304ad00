"""Looking inside trained networks: filters, activations, saliency, Grad-CAM, occlusion.

Every function here shares one signature convention:

    model      a flax.linen Module, applied as `model.apply(variables, x, train=False)`
               -> logits (the cnn_jax.models contract). Modules hash, so it is a static
               argument under jit.
    variables  {"params": ..., "batch_stats": ...} (the collections the model needs)
    images     float32 (N, H, W, C), preprocessed exactly as for evaluation
    targets    int (N,): the class explained for each image
    layer      a module path as `cnn-jax summary` prints it, e.g. "stage1_block1/conv1"
               (a ConvBN unit's output, after its ReLU) or "stage1_block1/conv1/conv" (the
               bare convolution). `list_layers` gives every path with its output shape.

The functions are jitted (model, layer and integer options static) and batched: in
inference mode BatchNorm uses its running statistics, so each image's result depends on
that image only, and the gradient of the summed class scores is each image's gradient.

Methods: first-layer filters as an image grid, activation maps of a named layer,
saliency (Simonyan et al. 2014) with SmoothGrad (Smilkov et al. 2017), guided
backpropagation (Springenberg et al. 2015, see interpret_guided), Grad-CAM (Selvaraju
et al. 2017), occlusion sensitivity (Zeiler & Fergus 2014, Sec. 4.2); class-model
visualisation and DeepDream live in interpret_dream.
"""

import difflib
import functools
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_jax.errors import UserError
from cnn_jax.interpret.guided import guided

_EPS = 1e-12


# ---- running a model and reaching one of its layers -------------------------------------
def layer_path(layer: str) -> tuple:
    return tuple(p for p in layer.split("/") if p)


def _first(out):
    """Logits from a model output (models with auxiliary heads return a tuple in training)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def logits_fn(model):
    return lambda variables, x: _first(model.apply(variables, x, train=False))


def _abstract(tree):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def list_layers(model, variables, input_shape) -> dict:
    """{path: output shape} of every module call (first call of each), in the order the
    calls finish: a block comes after its sublayers, so the last 4-D entry is the deepest
    feature map. The root module (the logits) is the path ""."""
    shapes = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and hasattr(out, "shape"):
            shapes.setdefault("/".join(context.module.path), tuple(out.shape))
        return out

    def run(v, x):
        with nn.intercept_methods(record):
            return model.apply(v, x, train=False)

    jax.eval_shape(run, _abstract(variables), jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    return shapes


def feature_layers(layers: dict) -> list:
    """Paths whose output is a feature map (N, H, W, C) larger than 1x1."""
    return [p for p, s in layers.items() if p and len(s) == 4 and s[1] * s[2] > 1]


def unknown_layer(layer: str, layers: dict) -> UserError:
    maps = feature_layers(layers)
    close = difflib.get_close_matches(layer, [p for p in layers if p], n=4, cutoff=0.4)
    hint = (
        f"the closest are {', '.join(repr(c) for c in close)}"
        if close
        else f"its feature maps run from {maps[0]!r} to {maps[-1]!r}"
        if maps
        else "it has no named layers"
    )
    return UserError(
        f"Layer {layer!r} is not a layer of this model ({hint}); `cnn-jax summary MODEL` prints the layer paths."
    )


def forward_with_layer(model, variables, images, layer: str, delta=None):
    """(logits, output of `layer`). `delta`, if given, is added to that output, so that
    the gradient with respect to `delta` is the gradient with respect to the layer."""
    target, captured = layer_path(layer), []

    def intercept(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if not captured and context.method_name == "__call__" and context.module.path == target:
            if not hasattr(out, "shape"):
                raise UserError(
                    f"Layer {layer!r} returns a {type(out).__name__}, not an array; pick one of its sublayers."
                )
            out = out if delta is None else out + delta.astype(out.dtype)
            captured.append(out)
        return out

    with nn.intercept_methods(intercept):
        logits = _first(model.apply(variables, images, train=False))
    if not captured:
        raise unknown_layer(layer, list_layers(model, variables, images.shape))
    return logits, captured[0]


@functools.partial(jax.jit, static_argnames=("model", "layer"))
def layer_activations(model, variables, images, layer: str):
    """The output of `layer` for each image, e.g. (N, h, w, channels)."""
    return forward_with_layer(model, variables, images, layer)[1]


def class_score(logits, targets):
    """Sum over the batch of each image's target logit (the unnormalised class score)."""
    return jnp.take_along_axis(logits, targets[:, None], axis=1).sum()


def class_probability(logits, targets):
    return jnp.take_along_axis(jax.nn.softmax(logits.astype(jnp.float32)), targets[:, None], axis=1)[:, 0]


# ---- gradients with respect to the input ------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("model", "samples", "guided_relu"))
def input_gradients(
    model, variables, images, targets, key=None, samples: int = 0, noise: float = 0.15, guided_relu: bool = False
):
    """d(class score)/d(image), (N, H, W, C).

    samples > 0: SmoothGrad, the mean gradient over `samples` copies of the image with
    Gaussian noise of standard deviation `noise` x (max - min) of that image (Smilkov et
    al.: 10-20% works best). guided_relu: guided backpropagation through every ReLU.
    """
    forward = guided(logits_fn(model)) if guided_relu else logits_fn(model)
    grad = jax.grad(lambda x: class_score(forward(variables, x), targets))
    if samples <= 0:
        return grad(images)
    if key is None:
        raise ValueError("SmoothGrad (samples > 0) needs a random key.")
    spread = images.max(axis=(1, 2, 3), keepdims=True) - images.min(axis=(1, 2, 3), keepdims=True)
    sigma = noise * spread

    def add(total, k):
        return total + grad(images + sigma * jax.random.normal(k, images.shape, images.dtype)), None

    total, _ = jax.lax.scan(add, jnp.zeros_like(images), jax.random.split(key, samples))
    return total / samples


def saliency_map(gradients):
    """Simonyan et al. Sec. 3.1: the largest absolute gradient over the channels, (N, H, W)."""
    return jnp.abs(gradients).max(axis=-1)


def saliency(model, variables, images, targets, key=None, samples: int = 0, noise: float = 0.15):
    """Saliency map (N, H, W); SmoothGrad when samples > 0."""
    return saliency_map(input_gradients(model, variables, images, targets, key, samples, noise))


def guided_backprop(model, variables, images, targets):
    """Guided-backpropagation gradient (N, H, W, C) of the class score."""
    return input_gradients(model, variables, images, targets, guided_relu=True)


# ---- Grad-CAM ---------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("model", "layer"))
def gradcam(model, variables, images, targets, layer: str):
    """Grad-CAM map (N, H, W) at the image's resolution: relu(sum_k alpha_k A_k), with A the
    feature map of `layer` and alpha_k the spatial mean of d(class score)/dA_k; bilinearly
    upsampled. Not normalised (divide by its max to overlay)."""
    shape = jax.eval_shape(lambda v, x: forward_with_layer(model, v, x, layer)[1], variables, images)
    if len(shape.shape) != 4:
        raise UserError(
            f"Grad-CAM needs a layer with a feature map (N, H, W, C); {layer!r} outputs shape {tuple(shape.shape)}."
        )

    def score(delta):
        logits, act = forward_with_layer(model, variables, images, layer, delta)
        return class_score(logits, targets), act

    grads, act = jax.grad(score, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))
    alpha = grads.astype(jnp.float32).mean(axis=(1, 2))
    cam = jax.nn.relu(jnp.einsum("nhwk,nk->nhw", act.astype(jnp.float32), alpha))
    return jax.image.resize(cam, images.shape[:3], "bilinear")


# ---- occlusion --------------------------------------------------------------------------------
class Occlusion(NamedTuple):
    probs: jax.Array  # (N, ny, nx): target probability with the patch at each grid position
    base: jax.Array  # (N,): target probability of the intact image
    heat: jax.Array  # (N, H, W): mean drop (base - prob) over the patch positions covering each pixel


def patch_starts(size: int, patch: int, stride: int) -> tuple:
    """Patch offsets every `stride` pixels, plus a last one flush with the edge so every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return tuple(starts)


def _patch_mask(h: int, w: int, top, left, patch: int, dtype):
    rows = (jnp.arange(h) >= top) & (jnp.arange(h) < top + patch)
    cols = (jnp.arange(w) >= left) & (jnp.arange(w) < left + patch)
    return (rows[:, None] & cols[None, :]).astype(dtype)


@functools.partial(jax.jit, static_argnames=("model", "patch", "stride", "batch"))
def occlusion(
    model, variables, images, targets, patch: int = 8, stride: int = 4, fill=0.0, batch: int = 16
) -> Occlusion:
    """Zeiler & Fergus occlusion: slide a `patch` x `patch` square of value `fill` (a
    scalar or one value per channel; grey in the model's input scale) over the image
    with `stride`, and record the target probability at each position. `batch` patch
    positions are evaluated at once (memory: batch x N images)."""
    n, h, w, _ = images.shape
    if not 0 < patch <= min(h, w) or stride < 1:
        raise UserError(
            f"The occlusion patch ({patch}) must fit in the {h}x{w} image and the stride ({stride}) be at least 1."
        )
    ys, xs = patch_starts(h, patch, stride), patch_starts(w, patch, stride)
    grid = jnp.array([(y, x) for y in ys for x in xs], jnp.int32)
    forward = logits_fn(model)
    fill = jnp.asarray(fill, images.dtype)

    def occluded(pos):
        m = _patch_mask(h, w, pos[0], pos[1], patch, images.dtype)[None, :, :, None]
        return class_probability(forward(variables, images * (1 - m) + fill * m), targets)

    probs = jax.lax.map(occluded, grid, batch_size=min(batch, len(grid)))  # (P, N)
    base = class_probability(forward(variables, images), targets)
    drops = base[None] - probs

    def accumulate(i, carry):
        total, count = carry
        m = _patch_mask(h, w, grid[i, 0], grid[i, 1], patch, jnp.float32)
        return total + drops[i][:, None, None] * m, count + m

    total, count = jax.lax.fori_loop(
        0, len(grid), accumulate, (jnp.zeros((n, h, w), jnp.float32), jnp.zeros((h, w), jnp.float32))
    )
    return Occlusion(probs.T.reshape(n, len(ys), len(xs)), base, total / jnp.maximum(count, 1.0))


# ---- filters and activation grids ---------------------------------------------------------------
def first_conv(model, variables, input_shape) -> tuple:
    """(path, kernel (kh, kw, in, out)) of the first module called whose parameters hold a 4-D kernel."""
    order = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.path not in order:
            order.append(context.module.path)
        return next_fun(*args, **kwargs)

    def run(v, x):
        with nn.intercept_methods(record):
            return model.apply(v, x, train=False)

    jax.eval_shape(run, _abstract(variables), jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    for path in order:
        node = variables["params"]
        for key in path:
            node = node.get(key, {}) if hasattr(node, "get") else {}
        kernel = node.get("kernel") if hasattr(node, "get") else None
        if kernel is not None and getattr(kernel, "ndim", 0) == 4:
            return "/".join(path), kernel
    raise UserError(f"{type(model).__name__} has no convolution with a 4-D kernel to show.")


def grid_shape(count: int, cols: int = 0) -> tuple:
    cols = cols or math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def tile_grid(tiles, cols: int = 0, pad: int = 1, pad_value: float = 1.0):
    """(T, h, w, c) tiles -> one (rows*(h+pad)+pad, cols*(w+pad)+pad, c) image, row by row;
    borders and unused cells are `pad_value`."""
    t, h, w, c = tiles.shape
    rows, cols = grid_shape(t, cols)
    tiles = jnp.concatenate([tiles, jnp.full((rows * cols - t, h, w, c), pad_value, tiles.dtype)])
    tiles = jnp.pad(tiles, ((0, 0), (pad, 0), (pad, 0), (0, 0)), constant_values=pad_value)
    grid = tiles.reshape(rows, cols, h + pad, w + pad, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + pad), cols * (w + pad), c)
    return jnp.pad(grid, ((0, pad), (0, pad), (0, 0)), constant_values=pad_value)


def _centred_unit(x, axes):
    """To [0, 1] with 0 at mid-grey (weights: the sign matters)."""
    return 0.5 + 0.5 * x / jnp.maximum(jnp.abs(x).max(axis=axes, keepdims=True), _EPS)


def _minmax_unit(x, axes):
    lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    return (x - lo) / jnp.maximum(hi - lo, _EPS)


@functools.partial(jax.jit, static_argnames=("cols",))
def filter_grid(kernel, cols: int = 0):
    """First-layer filters (kh, kw, in, out) as one image: a tile per output channel, each
    scaled so that 0 is mid-grey; colour tiles for 3 input channels, grey for 1, and the
    mean over input channels otherwise."""
    tiles = jnp.transpose(kernel.astype(jnp.float32), (3, 0, 1, 2))
    if tiles.shape[-1] not in (1, 3):
        tiles = tiles.mean(axis=-1, keepdims=True)
    return tile_grid(_centred_unit(tiles, (1, 2, 3)), cols)


@functools.partial(jax.jit, static_argnames=("cols",))
def activation_grid(activation, cols: int = 0):
    """One image's feature map (h, w, C) as a grid of C grey tiles, each min-max scaled."""
    tiles = jnp.transpose(activation.astype(jnp.float32), (2, 0, 1))[..., None]
    return tile_grid(_minmax_unit(tiles, (1, 2, 3)), cols)
