"""Whether a network takes an input size, found by tracing its initialisation on abstract values
(jax.eval_shape: no arrays, no device, no backend started), so that a size too small for a
network's pooling is refused in one sentence before data is read or memory allocated.

A too-small input surfaces inside a model as a shape error of whatever layer runs out of pixels
(a negative dimension, a division by a zero-sized window), or as an empty feature map that some
pooling forms return without complaint: those error types, raised while tracing a model at a
size, and any layer receiving an empty array, are a statement about the size.
"""

import contextlib
import functools

from cnn_jax.errors import UserError

_SHAPE_ERRORS = (ValueError, TypeError, ZeroDivisionError, IndexError)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return " ".join(text[0].split())[:160].rstrip(".") if text else type(error).__name__


@contextlib.contextmanager
def input_size_errors(name: str, size: int, fix: str):
    """Inside: a shape error is a UserError saying `name` cannot take `size`, and `fix`."""
    try:
        yield
    except UserError:
        raise
    except _SHAPE_ERRORS as e:
        from cnn_jax import models

        native = models.get_spec(name).input_size
        raise UserError(
            f"{name} cannot take {size}x{size} inputs ({_first_line(e)}); {fix} (its paper's input "
            f"is {native}x{native})."
        ) from None


def _empty_array(model, shape: tuple):
    """(layer path, shape) of the first layer that receives or returns an empty array when `model`
    initialises on `shape` (traced, not run), or None. Some pooling forms return a 0x0 map where
    others fail, and a network then trains on no features at all: either way the input is too small."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    found = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        for leaf in jax.tree.leaves((args, out)):
            if not found and 0 in getattr(leaf, "shape", (1,)):
                where = "/".join(context.module.path) or f"{type(context.module).__name__}.{context.method_name}"
                found.append((where, tuple(leaf.shape)))
        return out

    def init():  # train=True: auxiliary heads and dropout are part of what training traces
        with nn.intercept_methods(record):
            return model.init(
                {"params": jax.random.key(0), "dropout": jax.random.key(1)}, jnp.zeros(shape, jnp.float32), train=True
            )

    jax.eval_shape(init)
    return found[0] if found else None


def check_input(name: str, model, size: int, channels: int, fix: str) -> None:
    """Raise one sentence when `model` (registry name `name`) cannot train on size x size x
    channels inputs, saying `fix`."""
    with input_size_errors(name, size, fix):
        empty = _empty_array(model, (1, size, size, channels))
    if empty:
        from cnn_jax import models

        native = models.get_spec(name).input_size
        raise UserError(
            f"{name} cannot take {size}x{size} inputs (an empty {empty[1]} array appears in "
            f"{empty[0]}); {fix} (its paper's input is {native}x{native})."
        )


@functools.lru_cache(maxsize=256)
def _problem(name: str, kwargs_items: tuple, size: int, channels: int) -> str | None:
    from cnn_jax import models

    model = models.create_model(name, **dict(kwargs_items))
    try:
        check_input(
            name, model, size, channels or models.get_spec(name).in_channels, "set --config.data.image_size larger"
        )
    except UserError as e:
        return str(e)
    return None


def input_problem(name: str, kwargs: dict, size: int, channels: int = 0) -> str | None:
    """The sentence saying why model `name` with `kwargs` cannot train on size x size x channels
    images (0 channels: the model's own), or None when it can."""
    items = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
    try:
        hash(items)
    except TypeError:  # a nested option: trace without the cache
        return _problem.__wrapped__(name, items, int(size), int(channels))
    return _problem(name, items, int(size), int(channels))
