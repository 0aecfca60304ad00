"""`cnn-jax bench-data`: decode + augment throughput (images/s) of the input pipeline for
each preprocessing recipe, on a generated folder of JPEGs at ImageNet-like sizes."""

import pathlib
import time

import numpy as np

from cnn_jax.config import base_config
from cnn_jax.data.datasets import open_source
from cnn_jax.data.pipeline import Pipeline

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


def measure(folder: pathlib.Path, recipe: str, size: int, batch: int, batches: int) -> dict:
    """Images/s of `batches` training batches after the first: by the wall clock, and per
    CPU-second of this process (tf.data's threads run in it), which is images/s per core."""
    c = base_config()
    c.dataset, c.batch_size, c.data.recipe, c.data.image_size = str(folder), batch, recipe, size
    c.data.cache = False  # decoding is what is measured
    pipe = Pipeline(open_source(str(folder)), c)
    it = pipe.train_batches(0)
    next(it)  # start-up (graph building, first file opens) is not throughput
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"img_per_s": batches * batch / wall, "img_per_cpu_s": batches * batch / cpu}
