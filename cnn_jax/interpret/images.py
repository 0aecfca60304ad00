"""PNG writing for `cnn-jax explain`: panels, heat-map overlays and grids, pixel for pixel.

Everything works on numpy float images in [0, 1], (H, W, 3) or (H, W). Colour maps
come from matplotlib and the file is written by `matplotlib.image.imsave` (the Agg /
Pillow path, no display, no pyplot state), so a PNG has exactly the pixels composed
here: its size is known in advance and testable.
"""

import pathlib

import matplotlib
import matplotlib.image
import numpy as np

GAP = 4  # pixels of white between panels


def unit(x, lo=None, hi=None) -> np.ndarray:
    """Linearly to [0, 1] (min-max of `x` unless `lo`/`hi` are given)."""
    x = np.asarray(x, np.float32)
    lo = float(x.min()) if lo is None else lo
    hi = float(x.max()) if hi is None else hi
    return np.clip((x - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def rgb(image) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) in [0, 1] -> (H, W, 3)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def colorize(heat, cmap: str = "jet") -> np.ndarray:
    """A 2-D map, min-max scaled, through a matplotlib colour map -> (H, W, 3)."""
    return matplotlib.colormaps[cmap](unit(heat))[..., :3].astype(np.float32)


def overlay(image, heat, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The heat map blended over the image (Grad-CAM's presentation)."""
    return (1 - alpha) * rgb(image) + alpha * colorize(heat, cmap)


def signed_gradient(grad) -> np.ndarray:
    """A gradient (H, W, C) shown as an image: 0 at mid-grey, scaled by its largest |value|
    (the guided-backpropagation presentation)."""
    g = np.asarray(grad, np.float32)
    return np.clip(0.5 + 0.5 * g / max(float(np.abs(g).max()), 1e-12), 0.0, 1.0)


def upscale(image, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so small inputs (32x32 digits) stay readable."""
    image = np.asarray(image)
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def side_by_side(panels: list, gap: int = GAP) -> np.ndarray:
    """Equal-height RGB panels, left to right, with `gap` white columns between them."""
    panels = [rgb(p) for p in panels]
    h = panels[0].shape[0]
    if any(p.shape[0] != h for p in panels):
        raise ValueError("panels must have the same height")
    spacer = np.ones((h, gap, 3), np.float32)
    parts = [panels[0]]
    for p in panels[1:]:
        parts += [spacer, p]
    return np.concatenate(parts, axis=1)


def panels_width(panel_width: int, count: int, gap: int = GAP) -> int:
    return count * panel_width + (count - 1) * gap


def save_png(path, image) -> pathlib.Path:
    """Write an (H, W, 3) or (H, W) image in [0, 1] as an 8-bit PNG; returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(np.clip(rgb(image), 0.0, 1.0) * 255).astype(np.uint8)
    matplotlib.image.imsave(path, pixels, format="png")
    return path
