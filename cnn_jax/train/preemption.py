"""Preemption loses nothing: a run told to stop saves the step it has reached, and a run can
also save on the clock.

* SIGTERM (a spot machine's or a scheduler's notice) and the first Ctrl-C ask the run to stop.
  Every process stops after the same step, saves it, and raises `Preempted`; the command exits
  with PREEMPTED_EXIT_STATUS and the same command resumes. A repeated SIGTERM changes nothing
  (the save goes on); a second Ctrl-C aborts.
* One process: the signal handler sets a flag that the loop reads after every step (a Python
  value, no device synchronisation).
* Several processes: JAX's preemption service, started by jax.distributed.initialize, hears
  SIGTERM in any process and sets the sync point at the step after the furthest one any process
  has reported; each process asks it after every step, a local call. It listens to SIGTERM
  only, so Ctrl-C is passed on to it as SIGTERM. A notice that arrives before the loop's
  first step counts from step 0, which a resumed run has passed: it trains on until the end.
* `checkpoint_every_minutes`: a checkpoint once that much time has passed since the last one.
"""

import logging
import signal
import threading
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

# 128 + SIGTERM: what shells and schedulers report for a process ended by SIGTERM, so that a
# retry rule written for that case restarts a preempted run too (docs/errors.md).
PREEMPTED_EXIT_STATUS = 128 + signal.SIGTERM


class Preempted(KeyboardInterrupt):
    """The run stopped on a signal after saving the step it reached. An interruption, not an
    error: code that lets Ctrl-C through (a suite's `except Exception`) lets it through, and a
    sweep requeues the trial as it does after Ctrl-C."""

    exit_code = PREEMPTED_EXIT_STATUS

    def __init__(self, step: int, total: int, cause: str):
        super().__init__(
            f"stopped on {cause} at step {step} of {total} with its checkpoint saved; "
            "start the same command again to resume."
        )
        self.step = step


def now() -> float:
    """The clock of time-based checkpoints (the tests replace it)."""
    return time.monotonic()


def _jax_service_running(step: int) -> bool:
    """Whether JAX's preemption service runs (jax_enable_preemption_service). Reports `step`
    to it, which every step does from then on."""
    try:
        multihost_utils.reached_preemption_sync_point(step)
    except RuntimeError:
        return False
    return True


class StopSignals:
    """While entered, SIGTERM and the first Ctrl-C ask the run to stop; `reached(step)`, called
    after every step, is True at the step where every process stops."""

    def __init__(self, start: int):
        self.received = ""  # the name of the first stop signal this process received
        self._previous = {}
        several = jax.process_count() > 1
        self.jax_service = several and _jax_service_running(start)
        self.intercepting = (not several or self.jax_service) and threading.current_thread() is threading.main_thread()
        if several and not self.jax_service:
            logging.warning("JAX's preemption service is off: SIGTERM and Ctrl-C stop this run without a checkpoint.")

    def __enter__(self):
        if self.intercepting:
            # With several processes, SIGTERM stays with JAX's service (whose handler is installed).
            for sig in (signal.SIGINT,) if self.jax_service else (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        self._restore(list(self._previous))

    def after_last_step(self) -> None:
        """Ctrl-C interrupts the final evaluation again; SIGTERM stays caught (and ignored) so
        that it cannot cut the last checkpoint's write short."""
        self._restore([signal.SIGINT])

    def _restore(self, signals: list) -> None:
        for sig in [s for s in signals if s in self._previous]:
            handler = self._previous.pop(sig)  # None: one installed outside Python
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def _on_signal(self, signum: int, frame) -> None:
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C aborts, even mid-save
        if self.received:
            return  # a repeated notice must not interrupt the save under way
        self.received = signal.Signals(signum).name
        if self.jax_service:
            signal.raise_signal(signal.SIGTERM)

    def reached(self, step: int) -> bool:
        if self.jax_service:
            return multihost_utils.reached_preemption_sync_point(step)
        return bool(self.received)

    def cause(self) -> str:
        return self.received or "a preemption notice (SIGTERM)"


class CheckpointClock:
    """Checkpoints every `minutes` of wall time besides the step-based ones (0: none). One process
    reads its clock after every step. Several processes must agree: they decide at the steps where
    they fetch metrics anyway, by process 0's clock, which it broadcasts."""

    def __init__(self, minutes: float):
        self.seconds = 60.0 * float(minutes)
        self.last = now()

    def due(self, fetching_metrics: bool) -> bool:
        if self.seconds <= 0:
            return False
        if jax.process_count() == 1:
            return now() - self.last >= self.seconds
        if not fetching_metrics:
            return False
        return bool(multihost_utils.broadcast_one_to_all(np.asarray(now() - self.last >= self.seconds)))

    def saved(self) -> None:
        self.last = now()
