"""The `cnn-jax` command: parses arguments and calls the library. Errors a user can fix
print one sentence and exit non-zero."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnn_jax.errors import UserError  # noqa: E402

USAGE = """cnn-jax COMMAND ...

  train      --config configs/lenet5.py --workdir runs/lenet5 [--config.KEY=VALUE ...]
  config     [--markdown] | --config configs/lenet5.py [--config.KEY=VALUE ...]   (the keys; or check a config)
  eval       --workdir runs/lenet5 [--protocol center] [--step best|latest|N]
  eval       --weights FILE --model NAME --data DATA --out DIR [--split val]   (imported weights)
  summary    resnet50 [--input-size 224] | --list
  table      runs/a runs/b ... [--format md|csv] [--out FILE] [--plot acc_vs_macs.png]
  reproduce  experiments/digits.py --workdir runs/digits [--seeds N]
  compare    runs/a runs/b [--protocol center]   (runs or entry directories of seed<k>/ runs)
  bench      resnet50 [--batch-size 16] [--dtype bfloat16]
  sweep      experiments/sweeps/digits_lr.py --workdir runs/sweep [--storage URL] [--trials N] [--confirm-seeds N]
  explain    --workdir runs/lenet5 --image IMG --out OUT.png
             --method saliency|smoothgrad|guided|gradcam|occlusion|filters|activations|dream
  bench-data --recipe resnet [--images 2000]
  features   (--workdir W | --weights FILE --model NAME --data DATA) --layer NAME --out feats.npy
             [--split test] [--pool avg|flatten]
"""


# Each command is a module of this package with `run(argv) -> exit status`, imported only
# when it runs so that `cnn-jax --help` and process set-up stay fast.
COMMANDS = {
    "train": "train",
    "eval": "eval",
    "summary": "summary",
    "table": "table",
    "reproduce": "reproduce",
    "bench": "bench",
    "sweep": "sweep",
    "explain": "explain",
    "features": "features",
    "bench-data": "bench_data",
    "compare": "compare",
    "config": "config",
}


def _run(command: str, argv: list) -> int:
    import importlib

    from cnn_jax.cli.common import usage_errors_as_user_errors

    with usage_errors_as_user_errors():
        return importlib.import_module(f"{__name__}.{COMMANDS[command]}").run(argv)


def main(argv: list | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        from cnn_jax.errors import did_you_mean

        print(
            f"error: unknown command {command!r}{did_you_mean(command, COMMANDS)}; commands: {', '.join(COMMANDS)}.",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        from cnn_jax.cpu.host_memory import keep_freed_memory

        keep_freed_memory()  # first: threads started before it keep glibc's arenas
        from cnn_jax import compilation_cache

        if cache := compilation_cache.directory():
            compilation_cache.enable(cache)
        from cnn_jax.cpu.devices import split_host_cpu

        split_host_cpu()
        sys.exit(_run(command, rest))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:  # or a preempted run, which saved its step (cnn_jax/train/preemption.py)
        print(
            str(e) or "interrupted; start the same command again to resume from the last checkpoint.", file=sys.stderr
        )
        sys.exit(getattr(e, "exit_code", 130))
