"""A network to run outside training: a workdir's checkpoint or a weights file (Keras,
torchvision or a workdir), with the preprocessing its weights expect, and the batches
of one dataset split in the dataset's order.

    network = load_network("resnet50.safetensors", "resnet50_v1_5")    # or a workdir
    source, batches = split_batches("path/to/folder", "val", network.preprocessing, 32)

Used by `cnn-jax eval --weights` and `cnn-jax features`.
"""

import dataclasses
import pathlib

import jax

from cnn_jax.errors import UserError
from cnn_jax.weights import source_preprocessing as sp

KERAS_SUFFIXES = (".h5", ".keras")
TORCH_SUFFIXES = (".safetensors", ".pth", ".pt")


@dataclasses.dataclass
class Network:
    model: str  # our model name
    module: object  # flax.linen Module; apply(variables, x, train=False) -> logits
    variables: dict
    preprocessing: sp.Preprocessing
    weights: str  # the file or workdir (with its step) the weights came from
    dataset: str = ""  # a workdir's dataset: the default data to run on
    data_dir: str = ""

    @property
    def input_shape(self) -> tuple:
        p = self.preprocessing
        return (1, p.size, p.size, p.channels)


def load_trained(workdir: pathlib.Path, which: str):
    """(run, variables on the host, step) of a workdir's checkpoint (latest, best by minival or a step)."""
    from cnn_jax.train.checkpoint import Checkpoints
    from cnn_jax.train.evaluate import load_workdir_config, pick_step
    from cnn_jax.train.loop import build_run

    config = load_workdir_config(workdir)
    run = build_run(config, num_devices=1)
    ckpts = Checkpoints(workdir / "checkpoints", int(config.keep_checkpoints))
    try:
        step = pick_step(ckpts, which)
        restored = ckpts.restore(run.state, step)
    finally:
        ckpts.close()
    if restored is None:
        raise UserError(f"Checkpoint step {step} in {ckpts.directory} is unreadable; pass another --step.")
    from cnn_jax.train.ema import eval_variables  # the weights evaluation uses (the average, if kept)

    return run, jax.device_get(eval_variables(restored[1])), step


def from_workdir(workdir: pathlib.Path, which: str = "latest", normalization: str = "") -> Network:
    run, variables, step = load_trained(workdir, which)
    c = run.config
    return Network(
        c.model,
        run.model,
        variables,
        sp.for_run(c, run.pipeline.channels, normalization),
        f"{workdir} step {step}",
        c.dataset,
        c.data_dir,
    )


def weights_kind(path: pathlib.Path) -> str:
    """keras | torchvision | workdir, from what `path` is."""
    if path.is_dir():
        return "workdir"
    if not path.is_file():
        raise UserError(
            f"Weights {str(path)!r} do not exist; pass a Keras .h5/.keras file, a "
            "torchvision .safetensors/.pth file or a workdir."
        )
    if path.suffix in KERAS_SUFFIXES:
        return "keras"
    if path.suffix in TORCH_SUFFIXES:
        return "torchvision"
    raise UserError(
        f"{path.name} is not a weights file this command reads; pass a Keras "
        ".h5/.keras file, a torchvision .safetensors/.pth file or a workdir."
    )


def load_network(weights, model_name: str = "", normalization: str = "", which: str = "latest") -> Network:
    """Our `model_name` with the weights of a file (converted), or a workdir's checkpoint
    `which` (its own model). `normalization` replaces the source's input normalisation."""
    path = pathlib.Path(weights).expanduser()
    kind = weights_kind(path)
    if kind == "workdir":
        return from_workdir(path, which, normalization)
    if not model_name:
        raise UserError(
            f"Pass --model NAME, the architecture of {path.name} (`cnn-jax summary --list` shows the names)."
        )
    from cnn_jax.models.registry import get_spec

    size = get_spec(model_name).input_size
    if kind == "keras":
        from cnn_jax.weights.keras_import import keras_application, load_keras_weights

        keras_application(model_name)  # an unsupported model fails before Keras is imported
        preprocessing = sp.for_keras(model_name, size, normalization)
        module, variables = load_keras_weights(model_name, path)
    else:
        from cnn_jax.weights.torch_import import load_torchvision_weights

        preprocessing = sp.for_torchvision(model_name, size, normalization)
        module, variables = load_torchvision_weights(model_name, path)
    return Network(model_name, module, variables, preprocessing, str(path))


def split_batches(dataset: str, split: str, preprocessing: sp.Preprocessing, batch_size: int, data_dir: str = ""):
    """(source, numpy batches) of a whole split in the dataset's order, preprocessed; each
    batch is {"image", "label", "mask"}, the last one padded with mask-0 examples. `split`
    "" means the dataset's validation or test split."""
    from cnn_jax.config import base_config
    from cnn_jax.data.datasets import open_source
    from cnn_jax.data.pipeline import Pipeline

    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {batch_size}.")
    source = open_source(dataset, data_dir, train_split=split or "train", eval_split=split)
    config = base_config()
    config.dataset, config.data_dir, config.batch_size = dataset, data_dir, batch_size
    config.data.image_size, config.data.channels = preprocessing.size, preprocessing.channels
    config.data.cache = False  # read once
    return source, Pipeline(source, config).eval_batches(batch_size, preprocessing)
