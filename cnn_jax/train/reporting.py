"""Where a run reports: metrics.jsonl, TensorBoard events (CLU writer), a log file,
and a progress bar on an interactive terminal (plain log lines otherwise)."""

import json
import logging
import pathlib
import sys
import time

import jax

from cnn_jax.console import import_tensorflow, quiet_library_loggers

import_tensorflow()  # clu's writers import it: without its native start-up lines
from clu import metric_writers  # noqa: E402

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(workdir: pathlib.Path | None = None) -> None:
    """Log to stderr, and to workdir/train.log when there is a workdir (process 0 only)."""
    quiet_library_loggers()  # before anything below starts JAX's backends, which log their search
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for h in [h for h in root.handlers if not getattr(h, "_cnn_jax_file", False)]:
        root.removeHandler(h)  # a library's basicConfig would print every line twice
    console = logging.StreamHandler(sys.stderr)  # the current stderr (tests swap it)
    console.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
    root.addHandler(console)
    for h in [h for h in root.handlers if getattr(h, "_cnn_jax_file", False)]:
        root.removeHandler(h)
        h.close()
    if workdir is not None and jax.process_index() == 0:
        handler = logging.FileHandler(pathlib.Path(workdir) / "train.log")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler._cnn_jax_file = True
        root.addHandler(handler)


class MetricsWriter:
    """metrics.jsonl (one JSON object per record) plus TensorBoard scalars."""

    def __init__(self, workdir: pathlib.Path):
        self.primary = jax.process_index() == 0
        self.jsonl = pathlib.Path(workdir) / "metrics.jsonl"
        self.tb = metric_writers.create_default_writer(
            str(pathlib.Path(workdir) / "tensorboard"), just_logging=not self.primary, asynchronous=True
        )

    def write(self, step: int, scalars: dict) -> None:
        if not self.primary:
            return
        with self.jsonl.open("a") as f:
            f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")
        self.tb.write_scalars(int(step), scalars)

    def write_hparams(self, hparams: dict) -> None:
        if self.primary:
            self.tb.write_hparams({k: v for k, v in hparams.items() if isinstance(v, (int, float, str, bool))})

    def close(self) -> None:
        self.tb.flush()
        self.tb.close()


class Progress:
    """A tqdm bar with images/s and ETA on a terminal; otherwise a log line per report."""

    def __init__(self, total_steps: int, start_step: int, batch_size: int, enabled: bool = True):
        self.total, self.batch = total_steps, batch_size
        self.last_step, self.last_time = start_step, time.perf_counter()
        self.bar = None
        if enabled and sys.stderr.isatty() and jax.process_index() == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def update(self, step: int, scalars: dict) -> float:
        """Report progress at `step` (after a host sync); returns images/s since the last report."""
        now = time.perf_counter()
        rate = (step - self.last_step) * self.batch / max(now - self.last_time, 1e-9)
        eta = (self.total - step) * self.batch / max(rate, 1e-9)
        shown = " ".join(f"{k}={v:.4g}" for k, v in scalars.items())
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"{shown} img/s={rate:.1f}")
        else:
            logging.info("step %d/%d %s img/s=%.1f eta=%s", step, self.total, shown, rate, _hms(eta))
        self.last_step, self.last_time = step, now
        return rate

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def write_json_atomic(path: pathlib.Path, data: dict) -> None:
    """Write then rename, so a crash never leaves a half-written file in place of a good one."""
    if jax.process_index() != 0:
        return
    tmp = pathlib.Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
