"""`cnn-jax reproduce`: train every entry of a suite and write its comparison table."""

import argparse


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax reproduce")
    p.add_argument("suite")
    p.add_argument("--workdir", required=True)
    p.add_argument("--only", nargs="*", default=None, help="run only these entry names")
    p.add_argument("--num-devices", type=int, default=0)
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="train every entry over seeds 0..N-1 into NAME/seed<k>/ (overrides the entries' own "
        "`seeds`; 1 trains each entry once in NAME/)",
    )
    a = p.parse_args(argv)
    from cnn_jax.input_files import raise_problems, workdir_path_problems

    raise_problems(workdir_path_problems(a.workdir))
    from cnn_jax.train.reporting import setup_logging
    from cnn_jax.train.suite import run_suite

    setup_logging(None)
    print(run_suite(a.suite, a.workdir, a.only, a.num_devices, a.seeds), end="")
    print(f"(table written to {a.workdir}/table.md, table.csv and table.png)")
    return 0
