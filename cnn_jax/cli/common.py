"""Arguments several commands share."""

import argparse


def distributed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coordinator", default="", help="host:port of process 0 (multi-host without SLURM/MPI/TPU)")
    p.add_argument("--num-processes", type=int, default=0)
    p.add_argument("--process-id", type=int, default=-1)
    p.add_argument("--num-devices", type=int, default=0, help="use only the first N devices (0 = all)")
