"""`cnn-jax eval --weights FILE --model NAME --data DATA --out DIR`: the top-1/top-5 of
imported weights (Keras, torchvision) or of a workdir's checkpoint on any dataset split,
without a workdir of its own.

Each image goes through the preprocessing the weights' source used
(`source_preprocessing`), one centre crop, one forward pass; `DIR/results.json` records
the scores and that preprocessing. Labels are the dataset's class indices, so the data
must use the weights' classes in their order (an ImageNet folder of `n01440764`-style
class directories sorts into ImageNet's order).
"""

import logging
import pathlib

import jax

from cnn_jax.errors import UserError
from cnn_jax.weights.networks import Network, load_network, split_batches


def score(network: Network, batches) -> dict:
    """Top-1, top-5, mean cross-entropy and count over masked batches (one device)."""
    from cnn_jax.train.steps import make_eval_step, zero_eval_metrics

    module = network.module
    step = jax.jit(make_eval_step(lambda variables, images: module.apply(variables, images, train=False)))
    sums = zero_eval_metrics()
    for batch in batches:
        sums = step(network.variables, batch, sums)
    sums = jax.device_get(sums)
    n = float(sums["count"])
    if n == 0:
        raise UserError("The split holds no examples; pass --split the name of a split with images.")
    return {
        "top1": float(sums["top1"]) / n,
        "top5": float(sums["top5"]) / n,
        "loss": float(sums["loss_sum"]) / n,
        "count": int(n),
    }


def check_classes(network: Network, num_classes: int, dataset: str) -> int:
    outputs = int(getattr(network.module, "num_classes", 0) or 0)
    if outputs and num_classes > outputs:
        raise UserError(
            f"{dataset} has {num_classes} classes but the weights score {outputs}; "
            "evaluate on data labelled with the weights' classes."
        )
    return outputs


def evaluate_weights(
    weights: str,
    model_name: str,
    data: str,
    out: str,
    split: str = "",
    data_dir: str = "",
    batch_size: int = 32,
    normalization: str = "",
    which: str = "latest",
) -> dict:
    """Evaluate `weights` (a file for our `model_name`, or a workdir) on `data`'s `split`;
    writes and returns `out/results.json`."""
    if not out:
        raise UserError("Pass --out DIR, the directory for results.json.")
    if not data and not pathlib.Path(weights).expanduser().is_dir():
        raise UserError("Pass --data, a TFDS name or an image folder to evaluate the weights on.")
    network = load_network(weights, model_name, normalization, which)
    dataset = data or network.dataset
    source, batches = split_batches(
        dataset, split, network.preprocessing, batch_size, data_dir or ("" if data else network.data_dir)
    )
    outputs = check_classes(network, source.num_classes, dataset)
    result = score(network, batches)
    result.update(
        {
            "model": network.model,
            "weights": network.weights,
            "num_classes": outputs,
            "dataset": dataset,
            "split": source.eval_split,
            "protocol": "center",
            "preprocessing": network.preprocessing.record(),
        }
    )
    from cnn_jax.train.reporting import write_json_atomic

    pathlib.Path(out).mkdir(parents=True, exist_ok=True)
    write_json_atomic(pathlib.Path(out) / "results.json", result)
    logging.info(
        "eval %s (%s) on %s/%s: top1=%.4f top5=%.4f",
        network.weights,
        network.model,
        dataset,
        source.eval_split,
        result["top1"],
        result["top5"],
    )
    return result
