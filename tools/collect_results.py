"""Copy a suite's results into experiments/results/ as data: its table (Markdown, CSV), and per
run the resolved config, the metrics, the results and the training log, with a RUNS.md that
lists each run's command, seed, epochs and wall time. Checkpoints and TensorBoard events stay
in the workdir, except for runs still training: those are copied whole to `in_progress/`
with their latest checkpoint only, so that they can go on elsewhere. Copying
`in_progress/*` into the suite's workdir and running the suite command again resumes them
exactly.

    python tools/collect_results.py experiments/fashion_mnist.py runs/fashion_mnist experiments/results/fashion_mnist
"""

import json
import pathlib
import runpy
import shutil
import sys

RUN_FILES = ("config.json", "metrics.jsonl", "results.json", "train.log")
IN_PROGRESS = "in_progress"


def run_dirs(workdir: pathlib.Path, entry: dict) -> list:
    """(seed or None, directory) of an entry's runs, in the suite runner's layout."""
    if int(entry.get("seeds", 1)) > 1:
        return [(k, workdir / entry["name"] / f"seed{k}") for k in range(int(entry["seeds"]))]
    return [(None, workdir / entry["name"])]


def command(suite: str, entry: dict, seed, workdir: pathlib.Path) -> str:
    seed_flag = "" if seed is None else f" --config.seed={seed}"
    overrides = "".join(f" --config.{k}={v}" for k, v in entry.get("overrides", {}).items())
    return f"cnn-jax train --config {entry['config']}{overrides}{seed_flag} --workdir {workdir}"


def seed_of(run: pathlib.Path, seed) -> str:
    """The seed a run used: the suite's for a multi-seed entry, else its config.json's."""
    if seed is None and (run / "config.json").exists():
        seed = json.loads((run / "config.json").read_text()).get("seed")
    return "" if seed is None else str(seed)


def final_results(run: pathlib.Path) -> dict | None:
    """A run's results.json once it has ended; None while it trains or after it was stopped to be
    resumed (SIGTERM writes results.json with status "preempted")."""
    path = run / "results.json"
    results = json.loads(path.read_text()) if path.exists() else None
    return None if results is None or results.get("status") == "preempted" else results


def keep_unfinished(run: pathlib.Path, target: pathlib.Path):
    """Copy an unfinished run that has checkpoints to `target`, with its newest checkpoint step
    only; that step, or None when there is nothing to keep."""
    steps = sorted(int(p.name) for p in (run / "checkpoints").glob("*") if p.name.isdigit())
    if not steps:
        return None
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "metrics.jsonl", "train.log"):
        if (run / name).exists():
            shutil.copy2(run / name, target / name)
    # Orbax's commit_success.txt markers name the machine's absolute path; a local restore does
    # not read them.
    shutil.copytree(
        run / "checkpoints" / str(steps[-1]),
        target / "checkpoints" / str(steps[-1]),
        ignore=shutil.ignore_patterns("commit_success.txt"),
    )
    return steps[-1]


def unfinished_epoch(run: pathlib.Path, step: int) -> str:
    """The epoch a run's checkpoint `step` reached: the metrics log epoch = step / steps per epoch."""
    logged = [m for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "epoch" in m]
    return f"{step * logged[-1]['epoch'] / logged[-1]['step']:.1f} so far" if logged else ""


def collect(suite: str, workdir: pathlib.Path, out: pathlib.Path) -> str:
    entries = runpy.run_path(suite)["ENTRIES"]
    out.mkdir(parents=True, exist_ok=True)
    for name in ("table.md", "table.csv"):
        if (workdir / name).exists():
            shutil.copy2(workdir / name, out / name)
    lines = ["| run | seed | status | top-1 % | epochs | wall time | command |", "|---|---:|---|---:|---:|---:|---|"]
    shutil.rmtree(out / IN_PROGRESS, ignore_errors=True)
    for entry in entries:
        for seed, run in run_dirs(workdir, entry):
            r = final_results(run)
            if r is None:
                step = keep_unfinished(run, out / IN_PROGRESS / run.relative_to(workdir))
                if step is not None:
                    lines.append(
                        f"| {run.relative_to(workdir)} | {seed_of(run, seed)} | training | – | "
                        f"{unfinished_epoch(run, step)} | – | `{command(suite, entry, seed, run)}` |"
                    )
                continue
            target = out / run.relative_to(workdir)
            target.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                if (run / name).exists():
                    shutil.copy2(run / name, target / name)
            top1 = "–" if r.get("top1") is None else f"{100 * r['top1']:.2f}"
            lines.append(
                f"| {run.relative_to(workdir)} | {seed_of(run, seed)} | {r.get('status')} | "
                f"{top1} | {r.get('epochs')} | {r.get('wall_time_s', 0) / 60:.1f} min | "
                f"`{command(suite, entry, seed, run)}` |"
            )
    text = (
        f"# Runs of `{suite}`\n\nSuite command: `cnn-jax reproduce {suite} --workdir {workdir}`; "
        "each run below is the `cnn-jax train` command the suite issues.\n\n" + "\n".join(lines) + "\n"
    )
    (out / "RUNS.md").write_text(text)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python tools/collect_results.py SUITE_FILE SUITE_WORKDIR OUT_DIR")
    print(collect(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])), end="")
