"""`cnn-jax train`: train a config in a workdir; the same command on an existing workdir
resumes it from its last checkpoint."""

import argparse

from cnn_jax.cli.common import distributed_args


def run(argv: list) -> int:
    from cnn_jax.config import config_from_flags
    config, rest = config_from_flags(argv)
    p = argparse.ArgumentParser(prog="cnn-jax train")
    p.add_argument("--workdir", required=True)
    p.add_argument("--allow-config-change", action="store_true",
                   help="continue a workdir's run although its config.json differs")
    distributed_args(p)
    a = p.parse_args(rest)
    from cnn_jax.train import parallel
    parallel.maybe_initialize_distributed(a.coordinator, a.num_processes, a.process_id)
    from cnn_jax.train.loop import train_and_evaluate
    r = train_and_evaluate(config, a.workdir, a.allow_config_change, a.num_devices)
    print(f"{r['model']} on {r['dataset']}: top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  "
          f"({r['steps']} steps, {r['images_per_s']:.1f} images/s) -> {a.workdir}/results.json")
    return 0
