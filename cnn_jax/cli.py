"""The `cnn-jax` command: parses arguments and calls the library. Errors a user can fix
print one sentence and exit non-zero."""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnn_jax.errors import UserError  # noqa: E402

USAGE = """cnn-jax COMMAND ...

  train      --config configs/lenet5.py --workdir runs/lenet5 [--config.KEY=VALUE ...]
  eval       --workdir runs/lenet5 [--protocol center] [--step best|latest|N]
  eval       --weights FILE --model NAME --data DATA --out DIR [--split val]   (imported weights)
  summary    resnet50 [--input-size 224] | --list
  table      runs/a runs/b ... [--format md|csv] [--out FILE] [--plot acc_vs_macs.png]
  reproduce  experiments/digits.py --workdir runs/digits
  bench      resnet50 [--batch-size 16] [--dtype bfloat16]
  sweep      experiments/sweeps/digits_lr.py --workdir runs/sweep [--storage URL] [--trials N]
  explain    --workdir runs/lenet5 --image IMG --method saliency|smoothgrad|guided|gradcam|occlusion|filters|activations|dream --out OUT.png
  bench-data --recipe resnet [--images 2000]
  features   (--workdir W | --weights FILE --model NAME --data DATA) --layer NAME --out feats.npy
             [--split test] [--pool avg|flatten]
"""


def _enable_compilation_cache() -> None:
    """Persistent XLA cache: the second run of a model skips most of its compile time."""
    if os.environ.get("CNN_JAX_COMPILATION_CACHE", "1") == "0":
        return
    import jax
    cache = os.environ.get("CNN_JAX_CACHE_DIR", os.path.expanduser("~/.cache/cnn_jax/xla"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _distributed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coordinator", default="", help="host:port of process 0 (multi-host without SLURM/MPI/TPU)")
    p.add_argument("--num-processes", type=int, default=0)
    p.add_argument("--process-id", type=int, default=-1)
    p.add_argument("--num-devices", type=int, default=0, help="use only the first N devices (0 = all)")


def cmd_train(argv: list) -> int:
    from cnn_jax.config import config_from_flags
    config, rest = config_from_flags(argv)
    p = argparse.ArgumentParser(prog="cnn-jax train")
    p.add_argument("--workdir", required=True)
    p.add_argument("--allow-config-change", action="store_true",
                   help="continue a workdir's run although its config.json differs")
    _distributed_args(p)
    a = p.parse_args(rest)
    from cnn_jax.train import parallel
    parallel.maybe_initialize_distributed(a.coordinator, a.num_processes, a.process_id)
    from cnn_jax.train.loop import train_and_evaluate
    r = train_and_evaluate(config, a.workdir, a.allow_config_change, a.num_devices)
    print(f"{r['model']} on {r['dataset']}: top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  "
          f"({r['steps']} steps, {r['images_per_s']:.1f} images/s) -> {a.workdir}/results.json")
    return 0


def cmd_eval(argv: list) -> int:
    if any(arg == "--weights" or arg.startswith("--weights=") for arg in argv):  # no workdir
        return _lazy("cnn_jax.analysis.weights_eval:cmd_eval_weights")(argv)
    p = argparse.ArgumentParser(prog="cnn-jax eval", epilog="Weights without a workdir: cnn-jax eval "
                                "--weights FILE --model NAME --data DATA --out DIR (add --help).")
    p.add_argument("--workdir", required=True)
    p.add_argument("--protocol", default="center", choices=["center", "10crop", "dense"])
    p.add_argument("--step", default="best", help="best, latest, or a step number")
    p.add_argument("--num-devices", type=int, default=0)
    a = p.parse_args(argv)
    from cnn_jax.evaluate import evaluate_workdir
    r = evaluate_workdir(a.workdir, a.protocol, a.step, a.num_devices)
    print(f"{r['model']} step {r['step']} ({a.protocol}): top-1 {100 * r['top1']:.2f}%  "
          f"top-5 {100 * r['top5']:.2f}%  over {r['count']} examples")
    return 0


def cmd_summary(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax summary")
    p.add_argument("model", nargs="?")
    p.add_argument("--input-size", type=int, default=0)
    p.add_argument("--num-classes", type=int, default=0)
    p.add_argument("--list", action="store_true", help="list the model names")
    a = p.parse_args(argv)
    from cnn_jax import models
    from cnn_jax.analysis.summary import format_summary, summarize
    if a.list or not a.model:
        for name in models.list_models():
            print(f"{name:<22} {models.get_spec(name).description}")
        return 0
    spec = models.get_spec(a.model)
    size = a.input_size or spec.input_size
    model = models.create_model(a.model, num_classes=a.num_classes or None)
    s = summarize(model, (1, size, size, spec.in_channels))
    print(format_summary(s, f"{a.model} at {size}x{size}x{spec.in_channels}"))
    from cnn_jax.models.registry import reference_numbers
    r = reference_numbers().get(a.model)
    if r and size == r.get("input_size") and not a.num_classes:
        print(f"reference: {r['params_exact']:,} params, {r['macs']:,} MACs ({r['variant']})")
    return 0


def cmd_table(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax table")
    p.add_argument("workdirs", nargs="+")
    p.add_argument("--format", default="md", choices=["md", "csv"])
    p.add_argument("--out", default="")
    p.add_argument("--plot", default="", help="accuracy vs MACs in FILE, learning curves in FILE_curves.SUFFIX")
    a = p.parse_args(argv)
    from cnn_jax.analysis.table import rows_from_workdirs, to_csv, to_markdown
    missing = [d for d in a.workdirs if not (pathlib.Path(d) / "results.json").exists()]
    if len(missing) == len(a.workdirs):
        raise UserError(f"No results.json in {', '.join(a.workdirs)}; pass workdirs of finished runs.")
    rows = rows_from_workdirs(a.workdirs)
    text = to_markdown(rows) if a.format == "md" else to_csv(rows)
    if a.out:
        pathlib.Path(a.out).write_text(text)
    print(text, end="")
    if a.plot:
        from cnn_jax.analysis.plots import plot_table
        print("plots: " + ", ".join(map(str, plot_table(rows, a.workdirs, a.plot))))
    return 0


def cmd_reproduce(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax reproduce")
    p.add_argument("suite")
    p.add_argument("--workdir", required=True)
    p.add_argument("--only", nargs="*", default=None, help="run only these entry names")
    p.add_argument("--num-devices", type=int, default=0)
    a = p.parse_args(argv)
    from cnn_jax.reproduce import run_suite
    from cnn_jax.train.reporting import setup_logging
    setup_logging(None)
    print(run_suite(a.suite, a.workdir, a.only, a.num_devices), end="")
    print(f"(table written to {a.workdir}/table.md, table.csv and table.png)")
    return 0


def cmd_bench(argv: list) -> int:
    from cnn_jax.bench import main as bench_main
    return bench_main(argv)


def _lazy(target: str):
    """A command implemented in its own module, imported only when it runs."""
    module, _, function = target.partition(":")

    def run(argv: list) -> int:
        import importlib
        return getattr(importlib.import_module(module), function)(argv)
    return run


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "summary": cmd_summary, "table": cmd_table,
            "reproduce": cmd_reproduce, "bench": cmd_bench,
            "sweep": _lazy("cnn_jax.sweep:cmd_sweep"),
            "explain": _lazy("cnn_jax.analysis.explain:cmd_explain"),
            "features": _lazy("cnn_jax.analysis.features:cmd_features"),
            "bench-data": _lazy("cnn_jax.data.bench_data:cmd_bench_data")}


def main(argv: list | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        from cnn_jax.errors import did_you_mean
        print(f"error: unknown command {command!r}{did_you_mean(command, COMMANDS)}; "
              f"commands: {', '.join(COMMANDS)}.", file=sys.stderr)
        sys.exit(2)
    try:
        from cnn_jax.host_memory import keep_freed_memory
        keep_freed_memory()  # first: threads started before it keep glibc's arenas
        _enable_compilation_cache()
        from cnn_jax.train.parallel import split_host_cpu
        split_host_cpu()
        sys.exit(COMMANDS[command](rest))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted; start the same command again to resume from the last checkpoint.", file=sys.stderr)
        sys.exit(130)
