"""Transfer learning: start from another run's (or a published file's) weights, replace the
head where the class count differs, and train everything, the head only, or the backbone
at a smaller learning rate.

Config keys (`transfer.*`): `init_from` (a workdir, or a Keras `.h5`/`.keras` or torchvision
`.safetensors`/`.pth` file for the same architecture), `freeze` ("" or "backbone": only the
parameters that were not loaded train), `backbone_lr_scale` (learning-rate multiplier of
the loaded parameters; 1 = same rate).
"""

import json
import logging
import pathlib

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import traverse_util

from cnn_jax.errors import UserError

LOADED, REPLACED, AT_INIT = "loaded", "replaced", "left at init"


def load_pretrained(init_from: str, model_name: str) -> dict:
    """{'params': ..., 'batch_stats': ...} as numpy trees from a workdir or a weights file."""
    path = pathlib.Path(init_from).expanduser()
    if not path.exists():
        raise UserError(f"transfer.init_from {init_from!r} does not exist; pass a workdir or a weights file.")
    if path.is_dir():
        return _from_workdir(path)
    if path.suffix in (".h5", ".keras"):
        from cnn_jax.weights.keras_import import load_keras_weights

        _, variables = load_keras_weights(model_name, str(path))
        return jax.tree.map(np.asarray, dict(variables))
    if path.suffix in (".safetensors", ".pth", ".pt"):
        from cnn_jax.weights.torch_import import load_torchvision_weights

        _, variables = load_torchvision_weights(model_name, str(path))
        return jax.tree.map(np.asarray, dict(variables))
    raise UserError(
        f"transfer.init_from {init_from!r} is neither a workdir nor a .h5/.keras/.safetensors/.pth "
        "weights file; pass one of those."
    )


def _from_workdir(workdir: pathlib.Path) -> dict:
    ckpt_dir = workdir / "checkpoints"
    steps = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit()) if ckpt_dir.exists() else []
    if not steps:
        raise UserError(f"transfer.init_from {str(workdir)!r} has no checkpoint; train it first.")
    results = workdir / "results.json"
    best = json.loads(results.read_text()).get("best_step") if results.exists() else None
    step = best if best in steps else steps[-1]
    with ocp.CheckpointManager(ckpt_dir.absolute(), item_names=("state",)) as mgr:
        raw = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    ema = raw.get("ema")  # a run that kept a weight average is evaluated, so transferred, with it
    logging.info("transfer: weights of %s step %d%s", workdir, step, " (their moving average)" if ema else "")
    raw = ema or raw
    return {"params": raw["params"], "batch_stats": raw.get("batch_stats", {}) or {}}


def merge(init: dict, pretrained: dict) -> tuple:
    """Pretrained values where path and shape agree, init elsewhere. Returns (tree, status per path)."""
    flat_init = traverse_util.flatten_dict(init)
    flat_pre = traverse_util.flatten_dict(pretrained) if pretrained else {}
    out, status = {}, {}
    for path, value in flat_init.items():
        source = flat_pre.get(path)
        if source is None:
            out[path], status[path] = value, AT_INIT
        elif tuple(source.shape) != tuple(value.shape):
            out[path], status[path] = value, REPLACED
        else:
            out[path], status[path] = np.asarray(source, value.dtype), LOADED
    return traverse_util.unflatten_dict(out), status


def log_status(status: dict) -> None:
    counts = {k: sum(1 for s in status.values() if s == k) for k in (LOADED, REPLACED, AT_INIT)}
    logging.info(
        "transfer: %d parameter arrays loaded, %d replaced (shape differs), %d left at init",
        counts[LOADED],
        counts[REPLACED],
        counts[AT_INIT],
    )
    for kind in (REPLACED, AT_INIT):
        names = ["/".join(p) for p, s in status.items() if s == kind]
        if names:
            logging.info("transfer: %s: %s", kind, ", ".join(names))


def param_labels(status: dict) -> dict:
    """'backbone' for loaded parameters, 'head' for the rest, as a nested tree."""
    return traverse_util.unflatten_dict({p: ("backbone" if s == LOADED else "head") for p, s in status.items()})


def wrap_optimizer(tx: optax.GradientTransformation, transfer_cfg, labels: dict) -> optax.GradientTransformation:
    """Freeze the backbone or scale its learning rate; the head keeps `tx` as it is."""
    if transfer_cfg.freeze == "backbone":
        backbone = optax.set_to_zero()
    elif transfer_cfg.freeze:
        raise UserError(f"transfer.freeze must be '' or 'backbone', not {transfer_cfg.freeze!r}.")
    elif float(transfer_cfg.backbone_lr_scale) != 1.0:
        backbone = optax.chain(tx, optax.scale(float(transfer_cfg.backbone_lr_scale)))
    else:
        return tx
    return optax.multi_transform({"head": tx, "backbone": backbone}, labels)
