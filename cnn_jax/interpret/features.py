"""`cnn-jax features`: the output of one named layer for every image of a split, as
`.npy` arrays for a linear probe.

    cnn-jax features --workdir W --layer NAME --out feats.npy [--split test] [--pool avg|flatten]
    cnn-jax features --weights FILE --model NAME --data DATA --layer NAME --out feats.npy

Writes `feats.npy`, float32 (N, D), and `feats_labels.npy`, int64 (N,), row i being the
split's i-th example in the dataset's order. `--pool avg` (default) averages a feature
map (N, H, W, C) over its positions (D = C) and leaves other outputs flattened;
`--pool flatten` keeps every position (D = H * W * C, in our H, W, C order). Images
go through the preprocessing of the weights' source (see `cnn-jax eval --weights`) or
the workdir's own evaluation recipe; the network runs in inference mode. Layer names
are the module paths of `cnn-jax summary MODEL` (capture as in `cnn-jax explain`).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.errors import UserError
from cnn_jax.interpret import attribution as I
from cnn_jax.weights.networks import Network, load_network, split_batches

POOLS = ("avg", "flatten")


def pooled(activations, pool: str):
    """(N, ...) layer output -> (N, D) features."""
    if pool == "avg" and activations.ndim == 4:
        return activations.mean(axis=(1, 2))
    return activations.reshape(activations.shape[0], -1)


@functools.partial(jax.jit, static_argnames=("model", "layer", "pool"))
def layer_features(model, variables, images, layer: str, pool: str = "avg"):
    """(N, D) float32 features of `layer` for a batch of preprocessed images."""
    return pooled(I.forward_with_layer(model, variables, images, layer)[1], pool).astype(jnp.float32)


def check_layer(network: Network, layer: str) -> tuple:
    """The layer's output shape (batch 1); an unknown name is an error naming the closest."""
    layers = I.list_layers(network.module, network.variables, network.input_shape)
    if layer not in layers:
        raise I.unknown_layer(layer, layers)
    return layers[layer]


def extract(network: Network, layer: str, batches, pool: str = "avg") -> tuple:
    """(features (N, D), labels (N,)) over masked batches, padding dropped, order kept."""
    if pool not in POOLS:
        raise UserError(f"--pool {pool!r} is not one of {', '.join(POOLS)}.")
    check_layer(network, layer)
    features, labels = [], []
    for batch in batches:
        keep = np.asarray(batch["mask"]) > 0
        f = layer_features(network.module, network.variables, jnp.asarray(batch["image"]), layer, pool)
        features.append(np.asarray(f)[keep])
        labels.append(np.asarray(batch["label"], np.int64)[keep])
    if not features:
        raise UserError("The split holds no examples; pass --split the name of a split with images.")
    return np.concatenate(features), np.concatenate(labels)


def labels_path(out: pathlib.Path) -> pathlib.Path:
    return out.with_name(f"{out.stem}_labels.npy")


def write_features(a) -> int:
    """Extract and save the features `a` asks for (`a`: the options cnn_jax.cli.features parses)."""
    if bool(a.workdir) == bool(a.weights):
        raise UserError("Pass either --workdir of a run or --weights FILE --model NAME, not both or neither.")
    out = pathlib.Path(a.out)
    if out.suffix != ".npy":
        raise UserError(f"--out {a.out} must name a .npy file, e.g. feats.npy.")
    if a.weights and not a.data and not pathlib.Path(a.weights).is_dir():
        raise UserError("Pass --data, a TFDS name or an image folder to compute features on.")
    from cnn_jax.train.reporting import setup_logging

    setup_logging(None)
    network = load_network(a.workdir or a.weights, a.model, a.normalization, a.step)
    shape = check_layer(network, a.layer)  # before reading any data
    dataset = a.data or network.dataset
    source, batches = split_batches(
        dataset, a.split, network.preprocessing, a.batch_size, a.data_dir or ("" if a.data else network.data_dir)
    )
    features, labels = extract(network, a.layer, batches, a.pool)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, features)
    np.save(labels_path(out), labels)
    print(
        f"{network.model} layer {a.layer!r} {shape[1:]} ({a.pool}): {features.shape[0]} x "
        f"{features.shape[1]} features of {dataset}/{source.eval_split} -> {out}, labels -> "
        f"{labels_path(out)}"
    )
    return 0
