"""`cnn-jax features`: the output of one named layer for every image of a split, as `.npy`
arrays for a linear probe (cnn_jax.interpret.features)."""

import argparse

from cnn_jax.interpret.features import POOLS


def parse(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnn-jax features", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="", help="a trained run (its latest checkpoint by default)")
    p.add_argument("--weights", default="", help="a Keras .h5/.keras or torchvision .safetensors/.pth file")
    p.add_argument("--model", default="", help="with --weights: our model name")
    p.add_argument("--layer", required=True, help="module path, e.g. stage3_block2 or C3")
    p.add_argument("--out", required=True, help="features .npy file; labels go to <stem>_labels.npy")
    p.add_argument("--data", default="", help="TFDS name or image folder (default: the workdir's)")
    p.add_argument("--split", default="", help="default: the dataset's validation or test split")
    p.add_argument("--data-dir", default="")
    p.add_argument("--pool", default="avg", choices=POOLS)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--step", default="latest", help="with --workdir: latest, best (by minival) or a step number")
    p.add_argument("--normalization", default="", help="replace the source's input normalisation")
    return p.parse_args(argv)


def run(argv: list) -> int:
    from cnn_jax.interpret.features import write_features

    return write_features(parse(argv))
