"""`cnn-jax reproduce`: train every entry of a suite and write its comparison table."""

import argparse


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax reproduce")
    p.add_argument("suite")
    p.add_argument("--workdir", required=True)
    p.add_argument("--only", nargs="*", default=None, help="run only these entry names")
    p.add_argument("--num-devices", type=int, default=0)
    a = p.parse_args(argv)
    from cnn_jax.train.suite import run_suite
    from cnn_jax.train.reporting import setup_logging
    setup_logging(None)
    print(run_suite(a.suite, a.workdir, a.only, a.num_devices), end="")
    print(f"(table written to {a.workdir}/table.md, table.csv and table.png)")
    return 0
