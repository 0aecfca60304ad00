"""Suites: a list of (config, overrides) with the numbers to compare against, run one
after another into one table.

A suite file (experiments/NAME.py) defines `ENTRIES`, a list of dicts with keys
`name`, `config` (a config spec such as "configs/resnet_cifar.py:depth=20"),
`overrides` (dotted key -> value, optional) and `published` ({"top1": %, "top5": %,
"source": text}, optional). Finished entries are skipped, interrupted ones resume,
failed ones are recorded and the suite goes on.
"""

import importlib.util
import logging
import pathlib

from cnn_jax.report.table import load_results, table_row, to_csv, to_markdown
from cnn_jax.config import config_from_flags
from cnn_jax.errors import UserError
from cnn_jax.train.loop import train_and_evaluate
from cnn_jax.train.reporting import setup_logging


def load_suite(path: str) -> list:
    file = pathlib.Path(path)
    if not file.is_file():
        raise UserError(f"Suite file {path!r} does not exist; pass a file from experiments/, e.g. experiments/digits.py.")
    spec = importlib.util.spec_from_file_location(f"_cnn_jax_suite_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entries = getattr(module, "ENTRIES", None)
    if not entries:
        raise UserError(f"Suite file {path!r} defines no ENTRIES list; add one (see experiments/digits.py).")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise UserError(f"Suite file {path!r} repeats an entry name; give each entry its own name.")
    return entries


def _resolve_config_path(spec: str, suite_file: pathlib.Path) -> str:
    path, sep, arg = spec.partition(":")
    if not pathlib.Path(path).exists():
        for base in pathlib.Path(suite_file).absolute().parents:  # experiments/sweeps/x.py finds configs/
            if (base / path).exists():
                path = str(base / path)
                break
    return path + sep + arg


def entry_argv(entry: dict, suite_file: pathlib.Path) -> list:
    argv = [f"--config={_resolve_config_path(entry['config'], suite_file)}"]
    for key, value in entry.get("overrides", {}).items():
        argv.append(f"--config.{key}={value}")
    return argv


def run_suite(suite_path: str, workdir, only: list | None = None, num_devices: int = 0) -> str:
    suite_file = pathlib.Path(suite_path)
    entries = load_suite(suite_path)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if only and entry["name"] not in only:
            continue
        run_dir = workdir / entry["name"]
        done = load_results(run_dir)
        if done and done.get("status") == "completed":
            logging.info("%s: finished earlier, skipped", entry["name"])
            continue
        config, _ = config_from_flags(entry_argv(entry, suite_file))
        logging.info("%s: training %s on %s", entry["name"], config.model, config.dataset)
        try:
            train_and_evaluate(config, run_dir, num_devices=num_devices)
        except Exception as e:  # noqa: BLE001  (a failed entry is recorded; the suite goes on)
            logging.error("%s failed: %s", entry["name"], e)
        setup_logging(None)
    rows = []
    for entry in entries:
        res = load_results(workdir / entry["name"])
        if res is not None:
            rows.append(table_row(res, entry.get("published"), entry["name"]))
        else:
            rows.append({"model": entry["name"], "status": "not run"})
    markdown = to_markdown(rows)
    (workdir / "table.md").write_text(markdown)
    (workdir / "table.csv").write_text(to_csv(rows))
    from cnn_jax.report.plots import plot_table  # table.png: accuracy vs MACs; table_curves.png
    plot_table(rows, [workdir / e["name"] for e in entries], workdir / "table.png")
    return markdown
