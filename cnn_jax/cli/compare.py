"""`cnn-jax compare A B`: two runs, or two entry directories of seeds, compared example by
example on the same test images (the statistics are in cnn_jax.report.compare). Prints the
comparison for a reader, then the same numbers as one JSON line."""

import argparse
import json


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax compare", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="a workdir, or an entry directory holding seed<k>/ workdirs")
    p.add_argument("b", help="the same for the other side")
    p.add_argument(
        "--protocol",
        default="center",
        help="whose predictions_<protocol>.npz to read: center (default), 10crop or dense",
    )
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples of the test examples")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    a = p.parse_args(argv)
    from cnn_jax.errors import UserError
    from cnn_jax.report.compare import compare, describe, load_side

    if a.resamples < 100:
        raise UserError(f"--resamples {a.resamples} is too few for a 95% interval; pass 1000 or more.")
    result = compare(load_side(a.a, a.protocol), load_side(a.b, a.protocol), a.resamples, a.seed)
    result["protocol"] = a.protocol
    print("\n".join(describe(result, a.protocol)))
    print(json.dumps(result))
    return 0
