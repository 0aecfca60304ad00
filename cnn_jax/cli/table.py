"""`cnn-jax table`: a comparison table (Markdown or CSV) of finished workdirs, or of entry
directories of seed<k>/ workdirs (mean ± std over the seeds), and plots."""

import argparse
import pathlib

from cnn_jax.errors import UserError


def run(argv: list) -> int:
    p = argparse.ArgumentParser(prog="cnn-jax table")
    p.add_argument("workdirs", nargs="+")
    p.add_argument("--format", default="md", choices=["md", "csv"])
    p.add_argument("--out", default="")
    p.add_argument("--plot", default="", help="accuracy vs MACs in FILE, learning curves in FILE_curves.SUFFIX")
    a = p.parse_args(argv)
    from cnn_jax.report.table import found_seed_runs, rows_from_workdirs, shown_rows, to_csv, to_markdown

    missing = [d for d in a.workdirs if not (pathlib.Path(d) / "results.json").exists() and not found_seed_runs(d)]
    if len(missing) == len(a.workdirs):
        raise UserError(
            f"No results.json in {', '.join(a.workdirs)} (nor in seed<k>/ below them); pass workdirs of finished runs."
        )
    rows = rows_from_workdirs(a.workdirs)
    text = to_markdown(rows) if a.format == "md" else to_csv(rows)
    if a.out:
        pathlib.Path(a.out).write_text(text)
    print(text, end="")
    if a.plot:
        from cnn_jax.report.plots import plot_table

        print("plots: " + ", ".join(map(str, plot_table(shown_rows(rows), a.workdirs, a.plot))))
    return 0
