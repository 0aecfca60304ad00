"""`cnn-jax bench-data`: decode + augment throughput of the input pipeline per recipe
(cnn_jax.data.bench_data)."""

import argparse
import json
import pathlib
import tempfile

from cnn_jax.data.bench_data import make_jpeg_folder, measure
from cnn_jax.data.recipes import list_recipes


def run(argv: list) -> int:
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
    rates = {r: measure(folder, r, a.size, a.batch_size, a.batches) for r in recipes}
    for r, rate in rates.items():
        print(
            f"{r:<14} {rate['img_per_s']:8.1f} images/s, {rate['img_per_cpu_s']:7.1f} per CPU-second "
            f"(decode + augment, {a.size}px, batch {a.batch_size})"
        )
    print(
        json.dumps(
            {
                "images": a.images,
                "size": a.size,
                "img_per_s": {r: rate["img_per_s"] for r, rate in rates.items()},
                "img_per_cpu_s": {r: rate["img_per_cpu_s"] for r, rate in rates.items()},
            }
        )
    )
    return 0
