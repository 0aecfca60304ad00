"""`cnn-jax eval`: a workdir's checkpoint with an evaluation protocol, or imported weights
(`--weights`) on any dataset split without a workdir."""

import argparse
import pathlib

from cnn_jax.errors import UserError


def run(argv: list) -> int:
    if any(arg == "--weights" or arg.startswith("--weights=") for arg in argv):  # no workdir
        return run_weights(argv)
    p = argparse.ArgumentParser(
        prog="cnn-jax eval",
        epilog="Weights without a workdir: cnn-jax eval "
        "--weights FILE --model NAME --data DATA --out DIR (add --help).",
    )
    p.add_argument("--workdir", required=True)
    p.add_argument("--protocol", default="center", choices=["center", "10crop", "dense"])
    p.add_argument(
        "--step",
        default="latest",
        help="latest (the final checkpoint; also: final), best (the best "
        "by minival top-1, for a run with minival) or a step number",
    )
    p.add_argument("--num-devices", type=int, default=0)
    a = p.parse_args(argv)
    from cnn_jax.train.evaluate import evaluate_workdir

    r = evaluate_workdir(a.workdir, a.protocol, a.step, a.num_devices)
    print(
        f"{r['model']} step {r['step']} ({a.protocol}): top-1 {100 * r['top1']:.2f}%  "
        f"top-5 {100 * r['top5']:.2f}%  over {r['count']} examples"
    )
    return 0


def run_weights(argv: list) -> int:
    p = argparse.ArgumentParser(
        prog="cnn-jax eval",
        description="The top-1/top-5 of imported weights or of a workdir's checkpoint on any dataset split.",
    )
    p.add_argument(
        "--weights", required=True, help="a Keras .h5/.keras or torchvision .safetensors/.pth file, or a workdir"
    )
    p.add_argument("--model", default="", help="our model name (for a file)")
    p.add_argument("--data", default="", help="a TFDS name or an image folder (default: the workdir's)")
    p.add_argument("--out", required=True, help="directory for results.json")
    p.add_argument("--split", default="", help="default: the dataset's validation or test split")
    p.add_argument("--data-dir", default="")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--normalization",
        default="",
        help="replace the source's input normalisation (imagenet, caffe, inception, unit, none)",
    )
    p.add_argument("--step", default="latest", help="with a workdir: latest, best (by minival) or a step number")
    p.add_argument(
        "--workdir",
        default="",
        help="a run whose model, dataset and data_dir are the defaults of --model, --data and --data-dir",
    )
    p.add_argument("--protocol", default="center", help="only center with --weights")
    a = p.parse_args(argv)
    if a.protocol != "center":
        raise UserError(f"--weights evaluates one centre crop; drop --protocol {a.protocol}.")
    if a.workdir:
        from cnn_jax.train.evaluate import load_workdir_config

        config = load_workdir_config(pathlib.Path(a.workdir))
        a.model, a.data = a.model or config.model, a.data or config.dataset
        a.data_dir = a.data_dir or config.data_dir
    from cnn_jax.train.reporting import setup_logging

    setup_logging(None)
    from cnn_jax.weights.evaluate import evaluate_weights

    r = evaluate_weights(a.weights, a.model, a.data, a.out, a.split, a.data_dir, a.batch_size, a.normalization, a.step)
    print(
        f"{r['model']} ({r['weights']}) on {r['dataset']}/{r['split']}: top-1 "
        f"{100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  over {r['count']} examples "
        f"-> {a.out}/results.json"
    )
    return 0
