"""Times a training step repeatedly and reports the spread; no dependencies, so that both our
scripts and the PyTorch ones (run from another venv) use it."""

import statistics
import time


def time_steps(step, steps: int, warmup: int = 2) -> list:
    """Seconds of each call of `step` (which must block until its work is done), warm-up dropped."""
    times = []
    for _ in range(warmup + steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times[warmup:]


def report(label: str, times: list) -> str:
    """The times sorted, in ms, their median and their fastest: the spread shows how noisy the
    machine was, and the fastest step is the one other tenants slowed least (the figure to
    compare between two programs on a shared machine, as timeit's docs advise)."""
    ordered = sorted(times)
    return (
        f"{label} ms/step: "
        + " ".join(f"{t * 1e3:.0f}" for t in ordered)
        + f" median {statistics.median(ordered) * 1e3:.0f} fastest {ordered[0] * 1e3:.0f}"
    )
