"""Per-example predictions of an evaluation: `predictions_<protocol>.npz` in the workdir.

The file holds, one row per evaluated example, sorted by `index`:

* `index` (int64): the example's position in the split's stored order (the order every
  run evaluates it in, see cnn_jax/data/pipeline.py), so two runs on the same split pair
  their rows by `index`;
* `label` (int64): its class;
* `top5` (int32, (N, 5)): the five best-scored classes, best first (-1 fills the columns
  of a model with fewer than five classes);
* `step` (int64, a scalar): the checkpoint's step.

Top-1 and top-5 of results.json are counted from these same classes, so `top5[:, 0] ==
label` averages to the reported top-1 exactly. Every process computes the whole batch's
rows (the step's outputs are replicated), and process 0 alone writes the file.
"""

import os
import pathlib

import jax
import numpy as np

from cnn_jax.train import parallel
from cnn_jax.train.steps import make_eval_step

KEYS = ("index", "label", "top5")


def file_name(protocol: str) -> str:
    return f"predictions_{protocol}.npz"


def jit_prediction_step(mesh, logits_fn=None):
    """The eval step that also returns each example's top-5, label, index and mask, gathered
    onto every device (a few integers per example) so any process can read all of them."""
    repl = parallel.replicated(mesh)
    return jax.jit(make_eval_step(logits_fn, per_example=True), donate_argnums=(2,), out_shardings=(repl, repl))


def gather(batch_outputs: list) -> dict:
    """The per-batch outputs of a prediction step -> the file's arrays: padding rows (mask 0)
    dropped, rows sorted by index."""
    host = [jax.device_get(b) for b in batch_outputs]
    kept = np.concatenate([np.asarray(b["mask"]) > 0 for b in host]) if host else np.zeros(0, bool)

    def column(key, dtype):
        values = np.concatenate([np.asarray(b[key]) for b in host]) if host else np.zeros((0,), dtype)
        return values[kept].astype(dtype)

    index = column("index", np.int64)
    order = np.argsort(index, kind="stable")
    top5 = column("top5", np.int32).reshape(-1, 5)
    return {"index": index[order], "label": column("label", np.int64)[order], "top5": top5[order]}


def write(path: pathlib.Path, predictions: dict, step: int) -> None:
    """Write then rename (process 0 only), so a crash never leaves half a file."""
    if jax.process_index() != 0:
        return
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **{k: predictions[k] for k in KEYS}, step=np.int64(step))
    os.replace(tmp, path)


def read(path: pathlib.Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def top1(predictions: dict) -> float:
    """Top-1 recomputed from a predictions file's rows."""
    return float(np.sum(predictions["top5"][:, 0] == predictions["label"])) / len(predictions["label"])
