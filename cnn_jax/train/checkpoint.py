"""Orbax checkpoints in `workdir/checkpoints`: the latest K, and with minival the best by
minival top-1 (never by the reported split's accuracy: cnn_jax/train/selection.py).

A checkpoint saved without a fresh minival evaluation carries top-1 = -1, so only the
"latest" policy keeps it; equal minival top-1s rank the later step first, as orbax's
BestN keeps the last of equals. Checkpoints of runs that ranked by the reported split
(metric `val_top1`) are no candidates. Restoring walks back from the newest step when a
step is unreadable (truncated, corrupted), warning about each one it skips and moving it to
`checkpoints_unreadable/` once an older step has been restored.
"""

import functools
import logging
import pathlib
import shutil

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from cnn_jax.errors import UserError
from cnn_jax.train.ema import WEIGHTS, init_ema

NO_METRIC = -1.0
METRIC = "minival_top1"


def _minival_top1(metrics) -> float:
    return float((metrics or {}).get(METRIC, NO_METRIC))


# Orbax saves a replicated array in slices, one per replica, each a program compiled for its
# device. That pays on accelerators for large arrays only; on CPU the replicas share the
# host's memory, and the slices' compiling is all they add (docs/performance.md).
MIN_REPLICA_SLICE_BYTES = 2**20


@functools.cache
def _use_replica_slices_where_they_pay() -> None:
    """Orbax's handler for jax.Array with its defaults, except that it never slices replicated
    arrays on CPU and elsewhere only into slices of at least MIN_REPLICA_SLICE_BYTES; registered
    once per process."""
    from orbax.checkpoint._src.metadata import array_metadata_store
    from orbax.checkpoint._src.serialization import type_handler_registry

    handler = ocp.type_handlers.ArrayHandler(
        array_metadata_store=array_metadata_store.Store(),
        use_replica_parallel=False if jax.default_backend() == "cpu" else None,  # None: Orbax's choice
        min_slice_bytes_for_replica_parallel=MIN_REPLICA_SLICE_BYTES,
    )
    registry = type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY
    registry.add(jax.Array, handler, override=True, ignore_warnings=True)


class _Manager(ocp.CheckpointManager):
    def reached_preemption(self, step: int) -> bool:
        """Never asks JAX's preemption service: the loop asks it after every step
        (cnn_jax/train/preemption.py), and the service takes the last step it was told of as the
        process's position, which a save finishing in the background would set back."""
        return False


class Checkpoints:
    def __init__(self, directory: pathlib.Path, keep: int = 2, keep_best: bool = False):
        """`keep_best`: also keep the best checkpoint by minival top-1 (a run with minival)."""
        self.directory = pathlib.Path(directory).absolute()
        _use_replica_slices_where_they_pay()  # here, after jax.distributed has started
        policies = [checkpoint_managers.LatestN(max(1, keep))]
        if keep_best:
            policies.append(checkpoint_managers.BestN(get_metric_fn=_minival_top1, reverse=False, n=1))
        policy = checkpoint_managers.AnyPreservationPolicy(policies)
        # best_fn makes orbax write each step's metrics (the policy alone decides what is kept).
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy,
            best_fn=_minival_top1,
            best_mode="max",
            enable_async_checkpointing=True,
            cleanup_tmp_directories=True,
            create=True,
        )
        # Handlers named up front so that item_metadata can read a step's tree before restoring it.
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.manager = _Manager(self.directory, options=options, item_names=("state", "meta"), item_handlers=handlers)

    def save(self, step: int, state, meta: dict, minival_top1: float | None = None) -> None:
        metrics = {METRIC: NO_METRIC if minival_top1 is None else float(minival_top1)}
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(_savable(state)), meta=ocp.args.JsonSave(meta)),
            metrics=metrics,
            force=True,
        )

    def steps(self) -> list:
        return sorted(self.manager.all_steps())

    def best_step(self) -> int | None:
        """The kept step with the best minival top-1 (equal: the later); None without minival."""
        scored = [(_minival_top1(m), s) for s, m in self._metrics().items() if _minival_top1(m) >= 0]
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
        """(step, state, meta) from `step`, or else from the newest readable step; None if there
        is none. Without `step` (resuming), the unreadable steps newer than the one restored are
        moved to `checkpoints_unreadable/`; if no step is readable, nothing is moved and it raises
        UserError, so that the same command cannot silently start the run again from step 0."""
        candidates = [step] if step is not None else sorted(self.steps(), reverse=True)
        unreadable = []
        for s in candidates:
            try:
                restored = self._read(template, s)
            except Exception as e:  # noqa: BLE001  (orbax raises many types for a damaged step)
                logging.warning(
                    "Checkpoint step %d in %s is unreadable (%s).", s, self.directory, str(e).splitlines()[0][:200]
                )
                unreadable.append(s)
                continue
            if step is None:
                for bad in unreadable:
                    logging.warning(
                        "Checkpoint step %d moved to %s; resuming from step %d.", bad, self._quarantine(bad), s
                    )
            return s, _merge(template, restored.state), restored.meta
        if unreadable and step is None:
            raise UserError(
                f"Every checkpoint in {self.directory} is unreadable (steps "
                f"{', '.join(map(str, sorted(unreadable)))}); move the folder away to train from "
                "step 0, or restore it from a backup."
            )
        return None

    def _read(self, template, step: int):
        abstract = _abstract(template, "ema" in self.manager.item_metadata(step)["state"])
        return self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        )

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
    """The arrays of a TrainState (its functions are rebuilt from the config). The weight
    average is stored only when the run keeps one: a run without one stores no average, and
    its checkpoints restore into a template without one."""
    saved = {
        "step": state.step,
        "params": state.params,
        "batch_stats": state.batch_stats,
        "opt_state": state.opt_state,
        "rng": state.rng,
        "control": state.control,
    }
    if state.ema:
        saved["ema"] = state.ema
    return saved


def _abstract(template, with_ema: bool) -> dict:
    """The tree to restore: the template's, with or without a weight average as the step
    holds one (a run may switch `ema_decay` on or off with --allow-config-change)."""
    tree = {k: v for k, v in _savable(template).items() if k != "ema"}
    if with_ema:
        tree["ema"] = {k: tree[k] for k in WEIGHTS}
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _merge(template, restored: dict):
    """The template with the restored arrays. A weight average the run keeps but the step lacks
    starts at the restored weights; one the run no longer keeps is dropped."""
    ema = restored.pop("ema", None)
    state = template.replace(**restored)
    if not template.ema:
        return state
    if ema is None:
        logging.info("The checkpoint holds no weight average; it starts at the restored weights.")
        ema = init_ema({"params": state.params, "batch_stats": state.batch_stats}, True)
    return state.replace(ema=ema)
