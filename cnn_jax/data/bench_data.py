"""`cnn-jax bench-data`: decode + augment throughput (images/s) of the input pipeline for
each preprocessing recipe, on a generated folder of JPEGs at ImageNet-like sizes."""

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np

from cnn_jax.config import base_config
from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline
from cnn_jax.data.recipes import list_recipes

# ImageNet's most common sizes (width x height): the decode cost depends on them.
SIZES = ((500, 375), (500, 333), (375, 500), (500, 500), (640, 480))


def make_jpeg_folder(root: pathlib.Path, num_images: int, num_classes: int = 10, seed: int = 0) -> pathlib.Path:
    """root/train/CLASS/*.jpg (and a small val/) of smooth random images, reused if present."""
    from PIL import Image
    marker = root / f".complete_{num_images}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for split, n in (("train", num_images), ("val", num_classes)):
        for i in range(n):
            w, h = SIZES[i % len(SIZES)]
            small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
            image = Image.fromarray(small).resize((w, h), Image.BILINEAR)  # JPEG-friendly, like photos
            d = root / split / f"class{i % num_classes:03d}"
            d.mkdir(parents=True, exist_ok=True)
            image.save(d / f"{i:06d}.jpg", quality=90)
    marker.touch()
    return root


def measure(folder: pathlib.Path, recipe: str, size: int, batch: int, batches: int) -> float:
    c = base_config()
    c.dataset, c.batch_size, c.data.recipe, c.data.image_size = str(folder), batch, recipe, size
    c.data.cache = False  # decoding is what is measured
    pipe = Pipeline(open_source(str(folder)), c)
    it = pipe.train_batches(0)
    next(it)  # start-up (graph building, first file opens) is not throughput
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def cmd_bench_data(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax bench-data")
    p.add_argument("--recipe", nargs="*", default=None, help="recipes to measure (default: all ImageNet ones)")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--folder", default="", help="where to generate the JPEGs (default: a temp dir)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=10)
    a = p.parse_args(argv)
    folder = pathlib.Path(a.folder or pathlib.Path(tempfile.gettempdir()) / "cnn_jax_bench_jpegs")
    make_jpeg_folder(folder, a.images)
    recipes = a.recipe or [r for r in list_recipes() if r not in ("digits", "none", "cifar")]
    results = {}
    for r in recipes:
        results[r] = measure(folder, r, a.size, a.batch_size, a.batches)
        print(f"{r:<14} {results[r]:8.1f} images/s (decode + augment, {a.size}px, batch {a.batch_size})")
    print(json.dumps({"images": a.images, "size": a.size, "img_per_s": results}))
    return 0
