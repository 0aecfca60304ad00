"""`cnn-jax explain`: one image through a trained workdir's network, and one picture of why
(cnn_jax.interpret.explain)."""

import argparse

from cnn_jax.interpret.explain import METHODS


def parse(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnn-jax explain", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--layer", default=None, help="module path, e.g. stage3_block3 or C3")
    p.add_argument("--class", dest="class_", type=int, default=None, help="class to explain (default: predicted)")
    p.add_argument("--step", default="latest", help="checkpoint: latest, best (by minival) or a step number")
    p.add_argument("--scale", type=int, default=0, help="pixel enlargement (0: automatic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=25, help="smoothgrad: noisy copies")
    p.add_argument("--noise", type=float, default=0.15, help="smoothgrad: noise std / image range")
    p.add_argument("--patch", type=int, default=0, help="occlusion patch side (0: size/8)")
    p.add_argument("--stride", type=int, default=0, help="occlusion stride (0: patch/2)")
    p.add_argument("--steps", type=int, default=20, help="dream: ascent steps per octave")
    p.add_argument("--octaves", type=int, default=3)
    p.add_argument("--step-size", type=float, default=0.01, help="dream: mean pixel change per step / range")
    p.add_argument("--l2", type=float, default=1e-3, help="dream: L2 penalty on the image")
    p.add_argument("--from-grey", action="store_true", help="dream from a grey image (class model, Simonyan)")
    return p.parse_args(argv)


def run(argv: list) -> int:
    from cnn_jax.interpret.explain import explain

    return explain(parse(argv))
