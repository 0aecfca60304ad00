"""Orbax checkpoints in `workdir/checkpoints`: the latest K and the best by validation top-1.

A checkpoint saved without a fresh evaluation carries top-1 = -1, so only the
"latest" policy keeps it. Restoring walks back from the newest step when a step
is unreadable (truncated, corrupted), warning about each one it skips.
"""

import logging
import pathlib
import shutil

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from cnn_jax.errors import UserError

NO_METRIC = -1.0


class Checkpoints:
    def __init__(self, directory: pathlib.Path, keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        policy = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(max(1, keep)),
            checkpoint_managers.BestN(get_metric_fn=lambda m: m["val_top1"], reverse=False, n=1),
        ])
        options = ocp.CheckpointManagerOptions(preservation_policy=policy, enable_async_checkpointing=True,
                                               cleanup_tmp_directories=True, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def save(self, step: int, state, meta: dict, val_top1: float | None = None) -> None:
        metrics = {"val_top1": NO_METRIC if val_top1 is None else float(val_top1)}
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_savable(state)),
                                                        meta=ocp.args.JsonSave(meta)),
                          metrics=metrics, force=True)

    def steps(self) -> list:
        return sorted(self.manager.all_steps())

    def best_step(self) -> int | None:
        scored = [(m["val_top1"], s) for s, m in self._metrics().items() if m and m.get("val_top1", -1) >= 0]
        return max(scored)[1] if scored else None

    def _metrics(self) -> dict:
        out = {}
        for s in self.steps():
            try:
                out[s] = self.manager.metrics(s)
            except Exception:  # a step without readable metrics is simply not a candidate
                out[s] = None
        return out

    def restore(self, template, step: int | None = None):
        """(step, state, meta) from `step` or the newest readable step; None if there is none."""
        candidates = [step] if step is not None else sorted(self.steps(), reverse=True)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _savable(template))
        for s in candidates:
            try:
                restored = self.manager.restore(s, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
            except Exception as e:  # noqa: BLE001  (orbax raises many types for a damaged step)
                logging.warning("Checkpoint step %d in %s is unreadable (%s); moved to %s, trying an older one.",
                                s, self.directory, str(e).splitlines()[0][:200], self._quarantine(s))
                continue
            return s, _merge(template, restored.state), restored.meta
        if candidates and step is None:
            raise UserError(f"Every checkpoint in {self.directory} is unreadable; move the folder away "
                            "to start afresh, or restore it from a backup.")
        return None

    def _quarantine(self, step: int) -> pathlib.Path:
        """Move a damaged step aside (kept for inspection) so that it can be written again."""
        target = self.directory.parent / "checkpoints_unreadable" / str(step)
        if jax.process_index() == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            shutil.move(str(self.directory / str(step)), str(target))
        self.manager.reload()
        return target

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _savable(state) -> dict:
    """The arrays of a TrainState (its functions are rebuilt from the config)."""
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rng": state.rng, "control": state.control}


def _merge(template, restored: dict):
    return template.replace(**restored)
