"""Arguments several commands share, and how every command's argument mistakes are reported."""

import argparse
import contextlib

from cnn_jax.errors import UserError


def whole_number(minimum: int, maximum: int = 2**31 - 1):
    """An argparse `type`: an integer in [minimum, maximum], else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to {maximum}, not {text!r}")
        return value

    parse.__name__ = f"whole number in [{minimum}, {maximum}]"
    return parse


def distributed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coordinator", default="", help="host:port of process 0 (multi-host without SLURM/MPI/TPU)")
    p.add_argument("--num-processes", type=whole_number(0), default=0)
    p.add_argument("--process-id", type=whole_number(-1), default=-1)
    p.add_argument("--num-devices", type=whole_number(0), default=0, help="use only the first N devices (0 = all)")


def _usage_error(parser: argparse.ArgumentParser, message: str):
    raise UserError(f"{parser.prog}: {' '.join(message.split())}; see `{parser.prog} --help`.")


@contextlib.contextmanager
def usage_errors_as_user_errors():
    """Inside: argparse's errors (a missing, unknown or malformed argument) are UserErrors, printed
    as the one sentence every other mistake is, instead of a usage block and a second line. Set
    here, around the command, so that each command module's parser gets it without asking."""
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _usage_error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original
