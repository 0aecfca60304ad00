"""`cnn-jax config`: every config key with its type, default, allowed values and meaning; or,
with --config, check a config (file, argument and overrides) as `cnn-jax train` would before
it starts, and print it: nothing is trained, read or written."""

import argparse
import json


def run(argv: list) -> int:
    if any(a.startswith("--config") for a in argv):
        return _check(argv)
    p = argparse.ArgumentParser(prog="cnn-jax config", description=__doc__.split("\n\n")[0])
    p.add_argument("--markdown", action="store_true", help="the table of docs/configuration.md")
    a = p.parse_args(argv)
    from cnn_jax.config_table import as_markdown, as_text

    print(as_markdown() if a.markdown else as_text(), end="")
    return 0


def _check(argv: list) -> int:
    from cnn_jax.config import config_from_flags, to_dict

    config, rest = config_from_flags(argv)  # raises UserError with every problem it finds
    argparse.ArgumentParser(prog="cnn-jax config --config FILE").parse_args(rest)
    print(json.dumps(to_dict(config), indent=1, sort_keys=True))
    print(f"config {config.model} on {config.dataset}: every key and rule checked, no problem found.")
    return 0
