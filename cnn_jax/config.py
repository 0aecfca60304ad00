"""Configs: the keys every recipe shares, config-file arguments, overrides, and the
resolved form written to `workdir/config.json`.

A config file is a Python file with `get_config(arg: str | None) -> ConfigDict`.
Its argument (`configs/resnet.py:depth=50,cpu`) is a comma-separated list of bare
words and key=value pairs; `parse_arg` turns it into a dict.
"""

import json
import pathlib
import re

import ml_collections
from absl import flags
from ml_collections import config_flags
from ml_collections.config_dict import placeholder

from cnn_jax.errors import UserError, did_you_mean
from cnn_jax.layers import impls

# Keys that may differ between a run and its resumption: they change how a run is
# watched or stored, not what it computes.
RESUMABLE_KEYS = {
    "log_every_steps",
    "checkpoint_every_steps",
    "checkpoint_every_minutes",
    "keep_checkpoints",
    "eval_every_steps",
    "data.num_parallel_calls",
    "progress_bar",
    "conv_impl",
    "bn_impl",
    "pool_impl",
    "dense_impl",
}


def base_config() -> ml_collections.ConfigDict:
    """The keys every config has; recipes override the values."""
    c = ml_collections.ConfigDict()
    c.model = "lenet5"
    c.model_kwargs = ml_collections.ConfigDict()
    c.bn_group_size = 0  # ghost BN: batch statistics over groups of N examples; 0 = whole batch
    c.dataset = "digits"  # a TFDS name or an image folder path
    c.data_dir = ""  # TFDS data directory ("" = TFDS's default)
    c.train_split = "train"
    c.eval_split = ""  # "" = validation, val or test, whichever exists
    c.data = ml_collections.ConfigDict(
        dict(
            recipe="digits",  # preprocessing recipe (cnn_jax/data/recipes.py)
            image_size=32,  # training/eval crop size
            channels=0,  # 0 = as stored; 3 turns grayscale into RGB
            idx_dir="",  # folder of mnist/fashion_mnist IDX files ("" = Debian's for fashion_mnist)
            shuffle_buffer=16_384,  # >= the split size gives a full permutation
            cache=True,  # keep decoded examples in memory (small datasets)
            skip_corrupt=False,  # drop undecodable images (counted in results.json)
            minival_size=0,  # examples of train_split held out for every choice made in training
            # (best checkpoint, plateau, sweeps); 0 = none (cnn_jax/data/minival.py)
            minival_seed=0,  # which examples minival holds; independent of `seed`
            num_parallel_calls=-1,  # -1 = one per CPU core
            # Modern add-ons, off in the paper recipes; None keeps the recipe's value (recipes.py).
            randaugment=placeholder(str),  # "N,M": N RandAugment ops at magnitude M (0-10), e.g. "2,9"
            random_erasing=placeholder(float),  # Random Erasing's probability, e.g. 0.5; 0 = off
            mixup_alpha=placeholder(float),  # Mixup's Beta(alpha, alpha), e.g. 0.2; 0 = off
            cutmix_alpha=placeholder(float),  # CutMix's Beta(alpha, alpha), e.g. 1.0; 0 = off
            mix_prob=placeholder(float),  # probability that a batch is mixed (default 1)
            mix_switch_prob=placeholder(float),  # both on: probability of CutMix for a batch (0.5)
        )
    )
    c.batch_size = 128  # global, over all devices and processes
    c.grad_accum_steps = 1  # each step accumulates this many micro-batches of batch_size / it; 1 = off
    c.eval_batch_size = 0  # 0 = batch_size
    c.num_epochs = -1.0  # set this or num_train_steps; the other follows
    c.num_train_steps = -1
    c.seed = 0
    c.dtype = "auto"  # compute dtype: float32 | bfloat16 | auto (bfloat16 on GPU/TPU,
    # float32 on CPU); parameters are always float32
    c.conv_impl = "auto"  # xla | gemm (1x1 as matmuls) | onednn (all through oneDNN) | auto (CPU: onednn, else gemm)
    c.bn_impl = "auto"  # flax | sums (BatchNorm from per-channel sums) | auto (sums on CPU only)
    c.pool_impl = "auto"  # xla | offsets (max pooling's gradient by saved window offsets) | auto (offsets on CPU only)
    c.dense_impl = (
        "auto"  # xla | explicit (dense weight gradients as x^T g, cnn_jax/cpu/gemm.py) | auto (explicit on CPU only)
    )
    c.optimizer = ml_collections.ConfigDict(
        dict(
            name="sgd",  # sgd | rmsprop | adamw
            lr=0.1,  # base learning rate for the global batch
            lr_reference_batch=0,  # >0: lr is per this batch; used lr = lr * batch_size / it (Goyal et al.)
            momentum=0.9,
            nesterov=False,
            weight_decay=0.0,  # L2 added to the gradient (sgd, rmsprop); decoupled for adamw
            weight_decay_mask="all",  # all | kernels (no decay on biases and BN)
            rho=0.9,  # rmsprop decay
            eps=1e-8,  # adam/rmsprop epsilon (rmsprop: inside the square root)
            rmsprop_initial_scale=0.0,  # rmsprop mean-square start; TF v1's RMSPropOptimizer starts at 1.0
            b1=0.9,
            b2=0.999,
            clip_norm=0.0,  # global gradient-norm clipping, 0 = off
        )
    )
    c.schedule = ml_collections.ConfigDict(
        dict(
            name="constant",  # constant | step | cosine | exponential | plateau
            warmup_epochs=0.0,  # linear warmup from 0
            boundaries_epochs=(),  # step: epochs at which lr *= factor
            factor=0.1,  # step/plateau/exponential multiplier
            decay_every_epochs=1.0,  # exponential: lr *= factor every this many epochs
            patience=2,  # plateau: evaluations without improvement
            min_delta=1e-3,  # plateau: top-1 improvement that counts
            end_lr_fraction=0.0,  # cosine: final lr as a fraction of the base
        )
    )
    c.loss = ml_collections.ConfigDict(dict(label_smoothing=0.0, aux_weight=0.3))
    c.ema_decay = 0.0  # >0: evaluate a moving average of the weights (Polyak); 0 = off
    c.ema_warmup = True  # decay min(ema_decay, (1+t)/(10+t)), as TF's ExponentialMovingAverage
    c.transfer = ml_collections.ConfigDict(
        dict(
            init_from="",  # a workdir or a weights file (cnn_jax/train/transfer.py)
            freeze="",  # "backbone": train only what was not loaded (the head)
            backbone_lr_scale=1.0,  # learning-rate multiplier of the loaded parameters
        )
    )
    c.log_every_steps = 50
    c.eval_every_steps = 0  # 0 = once per epoch
    c.checkpoint_every_steps = 0  # 0 = once per epoch
    c.checkpoint_every_minutes = 0.0  # also a checkpoint once this long has passed since the last; 0 = off
    c.keep_checkpoints = 2  # the latest K, plus the best by minival top-1 when there is minival
    c.report_checkpoint = "final"  # results.json's top-1/top-5: final | best_minival (the best by minival top-1)
    c.progress_bar = True  # only on an interactive terminal
    return c


def resolve_dtype(name: str, platform: str) -> str:
    """`auto` is bfloat16 on GPU/TPU, float32 on CPU; other names stand."""
    if name == "auto":
        return "bfloat16" if platform in ("gpu", "tpu") else "float32"
    return name


def resolve_for_platform(config: ml_collections.ConfigDict, platform: str) -> ml_collections.ConfigDict:
    """Turn the `auto` choices into this platform's: bfloat16 compute on GPU/TPU (their matmul
    units are built for it; on CPU it brings no speed-up, docs/performance.md), and on CPU only the
    convolutions through oneDNN where it builds (else 1x1 ones as matmuls), BatchNorm from
    per-channel sums and max pooling's gradient by saved window offsets (cnn_jax/layers/
    impls.py; on GPU/TPU XLA's own forms are the fast path). Resolved before config.json is
    written, so a workdir records what ran."""
    config.dtype = resolve_dtype(config.dtype, platform)
    for key, choice in impls.resolve(config, platform).items():
        config[key] = choice
    return config


def cpu_variant(c: ml_collections.ConfigDict, size: int = 32) -> ml_collections.ConfigDict:
    """The `cpu` argument of the paper configs: the same recipe (optimizer, schedule shape,
    loss) for 4 steps on `digits` at `size` pixels, batch 16, learning rate scaled linearly
    to that batch; a plateau schedule evaluates every 2 steps so that it can act. A recipe
    that holds out minival holds out 96 of the digits' 1,497 training examples."""
    c.dataset, c.data.recipe, c.data.image_size, c.data.channels = "digits", "digits", size, 1
    if not c.optimizer.lr_reference_batch:  # otherwise the lr follows batch_size by itself
        c.optimizer.lr *= 16 / c.batch_size
    c.batch_size = 16
    c.num_epochs, c.num_train_steps = -1.0, 4
    c.log_every_steps = 1
    if c.schedule.name == "plateau":
        c.eval_every_steps, c.schedule.patience = 2, 1
    if c.data.minival_size:
        c.data.minival_size = 96
    return c


def parse_arg(arg: str | None) -> dict:
    """'D,bn,cpu,depth=50' -> {'D': True, 'bn': True, 'cpu': True, 'depth': '50'}."""
    out = {}
    for part in filter(None, (p.strip() for p in (arg or "").split(","))):
        key, eq, value = part.partition("=")
        out[key.strip()] = value.strip() if eq else True
    return out


def check_arg(arg: dict, allowed: set, config_file: str, takes_value: set | None = None) -> None:
    """Refuse unknown argument names; with `takes_value`, also a value given to a bare word
    (`cpu=0` would read as true) and a bare name of those that need one (`depth`)."""
    for key in arg:
        if key not in allowed:
            raise UserError(
                f"{config_file} does not take the argument {key!r}"
                f"{did_you_mean(key, allowed)}; it takes {', '.join(sorted(allowed))}."
            )
        if takes_value is None:
            continue
        if key in takes_value and arg[key] is True:
            raise UserError(f"{config_file}: the argument {key} needs a value; write {key}=VALUE.")
        if key not in takes_value and arg[key] is not True:
            raise UserError(
                f"{config_file}: {key} is a bare word and takes no value; write {key}, not {key}={arg[key]}."
            )


def choice(arg: dict, key: str, allowed, default, config_file: str):
    """arg[key], or `default` when absent, as the element of `allowed` it names (numbers compare
    as numbers: alpha=1 is 1.0); otherwise one sentence naming the allowed values."""
    value = arg.get(key, default)
    for option in allowed:
        if str(value) == str(option) or _same_number(value, option):
            return option
    raise UserError(
        f"{config_file}: {key}={value} is not one of {', '.join(map(str, allowed))}; "
        f"e.g. {config_file}:{key}={default}."
    )


def positive_number(arg: dict, key: str, default: float, config_file: str) -> float:
    """arg[key] (or `default`) as a number above 0; otherwise one sentence."""
    value = arg.get(key, default)
    try:
        number = float(value) if value is not True else 0.0
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise UserError(f"{config_file}: {key}={value} is not a positive number; e.g. {config_file}:{key}={default}.")
    return number


def _same_number(value, option) -> bool:
    if isinstance(option, bool) or not isinstance(option, (int, float)) or value is True:
        return False
    try:
        return float(value) == option
    except (TypeError, ValueError):
        return False


def config_from_flags(argv: list) -> tuple:
    """Parse `--config FILE[:ARG]` and `--config.KEY=VALUE` overrides with ml_collections' config_flags.

    Returns (config, the other arguments). A bad file, key or value raises UserError.
    """
    config_args, rest, i = [], [], 0
    while i < len(argv):  # accept "--config X" as well as "--config=X"
        a = argv[i]
        if a.startswith("--config") and "=" not in a and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            config_args.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        (config_args if a.startswith("--config") else rest).append(a)
        i += 1
    fv = flags.FlagValues()
    argv_for_flags = ["cnn-jax"] + config_args
    config_flags.DEFINE_config_file(
        "config", None, "config file", flag_values=fv, lock_config=True, sys_argv=argv_for_flags
    )
    spec = next((a.split("=", 1)[1] for a in config_args if a.startswith("--config=")), None)
    if spec is None:
        raise UserError("No config given; pass --config configs/NAME.py (e.g. configs/lenet5.py).")
    path = spec.split(":", 1)[0]
    if not pathlib.Path(path).is_file():
        raise UserError(
            f"Config file {path!r} does not exist; pass the path of a file in configs/, "
            "e.g. --config configs/lenet5.py."
        )
    from cnn_jax.config_rules import check_config
    from cnn_jax.input_files import check_config_file

    check_config_file(path, spec.split(":", 1)[1] if ":" in spec else None)  # its mistakes, by file and line
    try:
        fv(argv_for_flags)
        config = fv["config"].value
    except UserError:
        raise
    except Exception as e:  # absl wraps the override errors of config_flags in several types
        raise UserError(_override_message(e)) from None
    check_config(config)  # every key and rule (cnn_jax/config_rules.py), before any work
    return config, rest


def _override_message(error: Exception) -> str:
    raw = str(error.args[0]) if error.args else str(error)
    text = " ".join(raw.split())
    suggestion = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
    if suggestion:
        good, bad = suggestion.groups()
        return f"Unknown config key {bad!r} in an override (did you mean {good!r}?); fix the --config.KEY=VALUE flag."
    bare_key = re.fullmatch(r"""["']*([\w.]+)["']*""", text)
    if bare_key:
        return f"Unknown config key {bare_key.group(1)!r} in an override; fix the --config.KEY=VALUE flag."
    text = text.rstrip(".")
    return f"Bad config override: {text}; fix the --config.KEY=VALUE flag (tuples are written '(1, 2)')."


def to_dict(config) -> dict:
    return json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else dict(config)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(old: dict, new: dict) -> list:
    """Keys whose values differ, ignoring the ones a resumed run may change. A key missing from
    one side counts as its base_config() default: it was written before the key existed, and a
    new key's default keeps the old behaviour."""
    a, b, default = flatten(old), flatten(new), flatten(to_dict(base_config()))
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k, default.get(k)) != b.get(k, default.get(k)) and k not in RESUMABLE_KEYS]
