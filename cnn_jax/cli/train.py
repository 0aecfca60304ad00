"""`cnn-jax train`: train a config in a workdir; the same command on an existing workdir
resumes it from its last checkpoint. The config and the workdir are checked before anything is
read or written: every problem is reported at once."""

import argparse
import copy

from cnn_jax.cli.common import distributed_args


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnn-jax train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="cnn-jax train --config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...] [options]",
    )
    p.add_argument("--workdir", required=True)
    p.add_argument(
        "--allow-config-change", action="store_true", help="continue a workdir's run although its config.json differs"
    )
    distributed_args(p)
    return p


def _help() -> int:
    from cnn_jax.config_table import as_text

    p = _parser()
    p.epilog = as_text()
    p.print_help()
    return 0


def _check_workdir(workdir: str, config, allow_change: bool) -> None:
    """The workdir's problems, judged with the config as the run will record it (resolved for
    this platform, as config.json holds it)."""
    import jax

    from cnn_jax import input_files
    from cnn_jax.config import resolve_for_platform, to_dict

    problems = input_files.workdir_path_problems(workdir)
    if not problems:
        resolved = to_dict(resolve_for_platform(copy.deepcopy(config), jax.default_backend()))
        problems = input_files.workdir_run_problems(workdir, resolved, allow_change)
    input_files.raise_problems(problems)


def run(argv: list) -> int:
    if "-h" in argv or "--help" in argv:
        return _help()
    from cnn_jax.config import config_from_flags

    config, rest = config_from_flags(argv)  # every key and rule checked (cnn_jax/config_rules.py)
    a = _parser().parse_args(rest)
    if a.num_processes > 1:
        from cnn_jax.config_rules import check_config

        check_config(config, a.num_processes)
    from cnn_jax.train import parallel

    parallel.maybe_initialize_distributed(a.coordinator, a.num_processes, a.process_id)
    _check_workdir(a.workdir, config, a.allow_config_change)
    from cnn_jax.train.loop import train_and_evaluate

    r = train_and_evaluate(config, a.workdir, a.allow_config_change, a.num_devices)
    print(
        f"{r['model']} on {r['dataset']}: top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  "
        f"({r['steps']} steps, {r['images_per_s']:.1f} images/s) -> {a.workdir}/results.json"
    )
    return 0
