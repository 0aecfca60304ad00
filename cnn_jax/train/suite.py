"""Suites: a list of (config, overrides) with the numbers to compare against, run one
after another into one table.

A suite file (experiments/NAME.py) defines `ENTRIES`, a list of dicts with keys
`name`, `config` (a config spec such as "configs/resnet_cifar.py:depth=20"),
`overrides` (dotted key -> value, optional), `published` (a dict as described in
cnn_jax.report.published, optional), `seeds` (N: train seeds 0..N-1 into NAME/seed<k>/,
optional) and `protocols` (test protocols to evaluate besides the centre crop, such as
["10crop"], optional). Finished runs are skipped, interrupted ones resume, failed ones are
recorded and the suite goes on.
"""

import logging
import pathlib

from cnn_jax.errors import UserError
from cnn_jax.input_files import load_python_file
from cnn_jax.report.published import normalise
from cnn_jax.report.table import entry_rows, load_evaluation, load_results, shown_rows, to_csv, to_markdown
from cnn_jax.train.evaluate import PROTOCOLS
from cnn_jax.train.seeds import check_seed_count, seed_runs, train_seeds


def _check_entry(entry: dict, path: str) -> None:
    where = f"Suite file {path!r}, entry {entry.get('name')!r}"
    check_seed_count(entry.get("seeds"), where)
    unknown = [p for p in entry.get("protocols", ()) if p not in PROTOCOLS]
    if unknown:
        raise UserError(f"{where}: unknown protocols {unknown}; use some of {', '.join(PROTOCOLS)}.")
    try:
        normalise(entry.get("published"))
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def load_suite(path: str) -> list:
    file = pathlib.Path(path)
    if not file.is_file():
        raise UserError(
            f"Suite file {path!r} does not exist; pass a file from experiments/, e.g. experiments/digits.py."
        )
    module = load_python_file(file, f"_cnn_jax_suite_{file.stem}")  # a syntax error is named by file and line
    entries = getattr(module, "ENTRIES", None)
    if not entries:
        raise UserError(f"Suite file {path!r} defines no ENTRIES list; add one (see experiments/digits.py).")
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise UserError(f"Suite file {path!r} repeats an entry name; give each entry its own name.")
    for entry in entries:
        _check_entry(entry, str(path))
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


def entry_seed_runs(entry: dict, workdir: pathlib.Path, seeds: int | None = None) -> list:
    """[(seed, workdir)] of an entry: `seeds` (the command line's) wins over the entry's own."""
    return seed_runs(workdir / entry["name"], seeds if seeds is not None else entry.get("seeds"))


def evaluate_protocols(run_dir: pathlib.Path, protocols, num_devices: int = 0) -> None:
    """Evaluate the checkpoint results.json reports (its `reported_step`, else the final one)
    with each extra protocol, unless eval_<protocol>.json already holds that step."""
    from cnn_jax.train.evaluate import evaluate_workdir

    results = load_results(run_dir)
    if not results or results.get("status") != "completed":
        return
    step = results.get("reported_step") or results.get("steps")
    which = "latest" if results.get("reported_step") is None else str(step)
    for protocol in protocols:
        done = load_evaluation(run_dir, protocol)
        if protocol == "center" or (done and done.get("step") == step):
            continue
        try:
            evaluate_workdir(run_dir, protocol, which, num_devices)
        except Exception as e:  # noqa: BLE001  (the table shows the protocol as not evaluated)
            logging.error("%s: %s evaluation failed: %s", run_dir, protocol, e)


def check_entry_configs(entries: list, suite_file: pathlib.Path) -> None:
    """Every entry's config (file, argument, overrides) checked before the first entry trains,
    and every problem reported at once."""
    from cnn_jax.config import config_from_flags
    from cnn_jax.input_files import raise_problems

    problems = []
    for entry in entries:
        try:
            config_from_flags(entry_argv(entry, suite_file))
        except UserError as e:
            problems.append(f"Suite file {str(suite_file)!r}, entry {entry['name']!r}: {e}")
    raise_problems(problems)


def run_suite(
    suite_path: str, workdir, only: list | None = None, num_devices: int = 0, seeds: int | None = None
) -> str:
    """Train the suite's entries (`only` a subset; `seeds` overrides every entry's seed count),
    then write table.md, table.csv and table.png into `workdir`; returns the Markdown."""
    suite_file = pathlib.Path(suite_path)
    entries = load_suite(suite_path)
    check_entry_configs([e for e in entries if not only or e["name"] in only], suite_file)
    seeds = check_seed_count(seeds, "--seeds")
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if only and entry["name"] not in only:
            continue
        runs = entry_seed_runs(entry, workdir, seeds)
        train_seeds(entry_argv(entry, suite_file), runs, entry["name"], num_devices)
        for _, run_dir in runs:
            evaluate_protocols(run_dir, entry.get("protocols", ()), num_devices)
    rows = []
    for entry in entries:
        rows += entry_rows(
            entry["name"], entry_seed_runs(entry, workdir, seeds), entry.get("published"), entry.get("protocols", ())
        )
    markdown = to_markdown(rows)
    (workdir / "table.md").write_text(markdown)
    (workdir / "table.csv").write_text(to_csv(rows))
    from cnn_jax.report.plots import plot_table  # table.png: accuracy vs MACs; table_curves.png

    curves = [run_dir for e in entries for _, run_dir in entry_seed_runs(e, workdir, seeds)]
    plot_table(shown_rows(rows), curves, workdir / "table.png")
    return markdown
