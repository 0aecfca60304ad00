"""What each config key may hold: its type, its range or choices, and one line saying what it
means. The same line is the key's `cnn-jax config` / `train --help` entry, its row in
docs/configuration.md and the reason given when a value is refused, so the three cannot drift.

Defaults are not repeated here: they are base_config()'s. Every key of base_config() needs an
entry (tests/test_config_schema.py fails otherwise); a key that base_config() lacks and the schema
does not know is a typo in a config file and is refused with the nearest known names.
"""

import dataclasses
import math
import re
from typing import Callable

from cnn_jax.errors import did_you_mean
from cnn_jax.layers.impls import CHOICES as SWITCH_CHOICES
from cnn_jax.train.optim import OPTIMIZERS, SCHEDULES

INT32_MAX = 2**31 - 1  # steps and seeds become int32 arrays
MAX_BATCH = 2**20  # beyond any device memory; keeps a typo from allocating for minutes
MAX_IMAGE = 2048  # pixels per side
_POWERS = {INT32_MAX: "2^31-1", MAX_BATCH: "2^20"}


@dataclasses.dataclass(frozen=True)
class Key:
    """One key. Numbers lie in [low, high] (`above`: low excluded, `below`: high excluded) or are
    one of `also`; `choices` is a tuple, or a function returning one when the names live in a
    module that is slow to import (then `hint` says where to find them)."""

    kind: type  # int, float, bool, str, tuple (of numbers) or dict
    text: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    below: bool = False
    also: tuple = ()
    choices: tuple | Callable = ()
    hint: str = ""
    optional: bool = False  # None: keep the preprocessing recipe's own value
    nonempty: bool = False
    pattern: str = ""  # a string's form, as a regular expression ...
    form: str = ""  # ... and in words

    def expectation(self) -> str:
        """What a valid value is, as a phrase: 'a whole number of at least 1'."""
        if self.form:
            what = self.form
        elif self.choices:
            what = self.hint if callable(self.choices) else "one of " + ", ".join(map(_shown, self.choices))
        elif self.kind is bool:
            what = "True or False"
        elif self.kind in (int, float):
            what = ("a whole number" if self.kind is int else "a number") + self._range()
            what += "".join(f" or {_shown(v)}" for v in self.also)
        elif self.kind is tuple:
            what = "a tuple of numbers" + self._range() + ", e.g. (30, 60)"
        elif self.kind is dict:
            what = "a dict of keyword arguments"
        else:
            what = "a non-empty string" if self.nonempty else "a string"
        return what + (", or None" if self.optional else "")

    def _range(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f" in {'(' if self.above else '['}{_shown(lo)}, {_shown(hi)}{')' if self.below else ']'}"
        if lo is not None:
            return f" {'above' if self.above else 'of at least'} {_shown(lo)}"
        if hi is not None:
            return f" {'below' if self.below else 'of at most'} {_shown(hi)}"
        return ""

    def problem(self, name: str, value) -> str | None:
        """One sentence saying why `value` cannot be `name`'s, or None when it can."""
        if value is None and self.optional:
            return None
        if callable(self.choices) and isinstance(value, str) and value not in self.choices():
            return f"Unknown {name} {_shown(value)}{did_you_mean(value, self.choices())}; use {self.hint}."
        if self.accepts(value):
            return None
        return f"{name} must be {self.expectation()} ({self.text}), not {_shown(value)}; fix --config.{name}."

    def accepts(self, value) -> bool:
        if self.choices and not callable(self.choices):
            return any(_same(value, c) for c in self.choices)
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind in (int, float):
            return _is_number(value, self.kind) and (value in self.also or self._in_range(value))
        if self.kind is tuple:
            return isinstance(value, (tuple, list)) and all(_is_number(v, float) and self._in_range(v) for v in value)
        if self.kind is dict:
            return hasattr(value, "keys")
        if not isinstance(value, str) or (self.nonempty and not value):
            return False
        return not self.pattern or re.fullmatch(self.pattern, value) is not None

    def _in_range(self, value) -> bool:
        lo, hi = self.low, self.high
        return (lo is None or (value > lo if self.above else value >= lo)) and (
            hi is None or (value < hi if self.below else value <= hi)
        )


def _is_number(value, kind: type) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return False
    return isinstance(value, int) or math.isfinite(value)  # an int may be too large for a float


def _same(value, choice) -> bool:
    return type(value) is type(choice) and value == choice


def _shown(value) -> str:
    """A value as a message shows it: repr, cut short (a fuzzed string may be long)."""
    if type(value) is int and value in _POWERS:
        return _POWERS[value]
    text = repr(value) if not isinstance(value, float) else f"{value:g}"
    return text if len(text) <= 60 else text[:57] + "..."


def _models() -> tuple:
    from cnn_jax import models

    return tuple(models.list_models())


def _recipes() -> tuple:
    from cnn_jax.data.recipes import list_recipes

    return tuple(list_recipes())


def _count(text: str, low: int = 0, **kw) -> Key:
    return Key(int, text, low=low, high=INT32_MAX, **kw)


def _fraction(text: str, **kw) -> Key:
    return Key(float, text, low=0.0, high=1.0, **kw)


SCHEMA = {
    "model": Key(
        str,
        "the network, a name of the model registry",
        choices=_models,
        hint="a model name (`cnn-jax summary --list`)",
    ),
    "model_kwargs": Key(dict, "options of the model's constructor, e.g. dropout_rate or head"),
    "bn_group_size": Key(
        int, "ghost BatchNorm: batch statistics over groups of N examples; 0 = whole batch", low=0, high=MAX_BATCH
    ),
    "dataset": Key(str, "a TFDS name or the path of an image folder (train/CLASS/*.jpg)", nonempty=True),
    "data_dir": Key(str, "TFDS data directory; '' = TFDS's default"),
    "train_split": Key(str, "the split trained on, e.g. train or train[:90%]", nonempty=True),
    "eval_split": Key(str, "the split reported; '' = validation, val or test, whichever exists"),
    "data.recipe": Key(
        str, "preprocessing recipe (cnn_jax/data/recipes.py)", choices=_recipes, hint="a recipe name (docs/data.md)"
    ),
    "data.image_size": Key(int, "training and evaluation crop size in pixels", low=1, high=MAX_IMAGE),
    "data.channels": Key(int, "image channels: 0 = as stored; 3 turns grayscale into RGB", choices=(0, 1, 3)),
    "data.idx_dir": Key(str, "folder of the mnist/fashion_mnist IDX files; '' = Debian's for fashion_mnist"),
    "data.shuffle_buffer": _count("examples shuffled at a time; >= the split size is a full permutation", 1),
    "data.cache": Key(bool, "keep decoded examples in memory (small datasets)"),
    "data.skip_corrupt": Key(bool, "drop undecodable images and count them in results.json"),
    "data.minival_size": _count("examples of train_split held out for every choice made in training; 0 = none"),
    "data.minival_seed": _count("which examples minival holds; independent of seed"),
    "data.num_parallel_calls": Key(int, "tf.data map parallelism; -1 = one per CPU core", low=1, high=1024, also=(-1,)),
    "data.randaugment": Key(
        str,
        "RandAugment: N ops at magnitude M, e.g. '2,9'; '' = off",
        optional=True,
        pattern=r"|\s*\d+\s*,\s*(10(\.0*)?|\d(\.\d*)?)\s*",
        form="'N,M' with M in [0, 10], or ''",
    ),
    "data.random_erasing": _fraction("Random Erasing's probability p, e.g. 0.5; 0 = off", optional=True),
    "data.mixup_alpha": Key(float, "Mixup's Beta(alpha, alpha), e.g. 0.2; 0 = off", low=0.0, high=100.0, optional=True),
    "data.cutmix_alpha": Key(
        float, "CutMix's Beta(alpha, alpha), e.g. 1.0; 0 = off", low=0.0, high=100.0, optional=True
    ),
    "data.mix_prob": _fraction("probability that a batch is mixed (default 1)", optional=True),
    "data.mix_switch_prob": _fraction("with Mixup and CutMix both on: probability of CutMix (0.5)", optional=True),
    "batch_size": Key(int, "global batch, over all devices and processes", low=1, high=MAX_BATCH),
    "grad_accum_steps": Key(
        int,
        "gradient accumulation: micro-batches per optimizer step, each of batch_size / grad_accum_steps; 1 = off",
        low=1,
        high=MAX_BATCH,
    ),
    "eval_batch_size": Key(int, "evaluation batch; 0 = batch_size", low=0, high=MAX_BATCH),
    "num_epochs": Key(float, "training length in epochs; <= 0 = set by num_train_steps", low=-1.0, high=1e6),
    "num_train_steps": Key(
        int, "training length in steps, wins over num_epochs; <= 0 = set by num_epochs", low=-1, high=INT32_MAX
    ),
    "seed": _count("initialisation, shuffling and augmentation seed"),
    "dtype": Key(
        str,
        "compute dtype; auto = bfloat16 on GPU/TPU, float32 on CPU; parameters stay float32",
        choices=("auto", "float32", "bfloat16"),
    ),
    "conv_impl": Key(
        str,
        "convolutions: xla, gemm (1x1 as matmuls), onednn (CPU) or auto",
        choices=("auto",) + SWITCH_CHOICES["conv_impl"],
    ),
    "bn_impl": Key(
        str,
        "BatchNorm: flax, sums (from per-channel sums) or auto (sums on CPU)",
        choices=("auto",) + SWITCH_CHOICES["bn_impl"],
    ),
    "pool_impl": Key(
        str,
        "max pooling's gradient: xla, offsets (saved window offsets) or auto (offsets on CPU)",
        choices=("auto",) + SWITCH_CHOICES["pool_impl"],
    ),
    "dense_impl": Key(
        str,
        "dense weight gradients: xla, explicit (x^T g) or auto (explicit on CPU)",
        choices=("auto",) + SWITCH_CHOICES["dense_impl"],
    ),
    "optimizer.name": Key(str, "the optimiser", choices=OPTIMIZERS),
    "optimizer.lr": Key(float, "base learning rate for the global batch", low=0.0, high=1e40),
    "optimizer.lr_reference_batch": Key(
        int, "> 0: lr is quoted per this batch and scaled linearly to batch_size", low=0, high=MAX_BATCH
    ),
    "optimizer.momentum": _fraction("momentum (sgd, rmsprop); 0 = none", below=True),
    "optimizer.nesterov": Key(bool, "Nesterov momentum"),
    "optimizer.weight_decay": Key(
        float, "L2 added to the gradient (sgd, rmsprop); decoupled for adamw", low=0.0, high=1.0
    ),
    "optimizer.weight_decay_mask": Key(
        str, "what decays: all, or kernels (no biases or BatchNorm)", choices=("all", "kernels")
    ),
    "optimizer.rho": _fraction("rmsprop's decay of the mean square", below=True),
    "optimizer.eps": Key(
        float, "adamw/rmsprop epsilon (rmsprop: inside the square root)", low=0.0, high=10.0, above=True
    ),
    "optimizer.rmsprop_initial_scale": Key(
        float, "rmsprop's mean-square start; TF v1's RMSProp starts at 1", low=0.0, high=1e6
    ),
    "optimizer.b1": _fraction("adamw's first-moment decay", below=True),
    "optimizer.b2": _fraction("adamw's second-moment decay", below=True),
    "optimizer.clip_norm": Key(float, "global gradient-norm clipping; 0 = off", low=0.0, high=1e6),
    "schedule.name": Key(str, "learning-rate schedule", choices=SCHEDULES),
    "schedule.warmup_epochs": Key(float, "linear warmup from 0, in epochs", low=0.0, high=1e6),
    "schedule.boundaries_epochs": Key(
        tuple, "step: ascending epochs at which lr *= factor", low=0.0, high=1e6, above=True
    ),
    "schedule.factor": _fraction("step/plateau/exponential multiplier of the learning rate", above=True),
    "schedule.decay_every_epochs": Key(
        float, "exponential: lr *= factor every this many epochs", low=0.0, high=1e6, above=True
    ),
    "schedule.patience": _count("plateau: evaluations without improvement before lr *= factor", 1),
    "schedule.min_delta": _fraction("plateau: the minival top-1 gain that counts as improvement"),
    "schedule.end_lr_fraction": _fraction("cosine: the final lr as a fraction of the base"),
    "loss.label_smoothing": _fraction("label smoothing of the cross-entropy targets", below=True),
    "loss.aux_weight": Key(
        float, "weight of auxiliary classifiers' losses (GoogLeNet, Inception-v3)", low=0.0, high=100.0
    ),
    "ema_decay": _fraction("> 0: evaluate a moving average of the weights (Polyak); 0 = off"),
    "ema_warmup": Key(bool, "decay min(ema_decay, (1+t)/(10+t)), as TF's ExponentialMovingAverage"),
    "transfer.init_from": Key(str, "a workdir or a .h5/.keras/.safetensors/.pth weights file to start from"),
    "transfer.freeze": Key(
        str, "'backbone': train only what was not loaded (the head); '' = train all", choices=("", "backbone")
    ),
    "transfer.backbone_lr_scale": Key(float, "learning-rate multiplier of the loaded parameters", low=0.0, high=100.0),
    "log_every_steps": _count("steps between training-metric lines; 0 = once per epoch"),
    "eval_every_steps": _count("steps between evaluations; 0 = once per epoch"),
    "checkpoint_every_steps": _count("steps between checkpoints; 0 = once per epoch"),
    "checkpoint_every_minutes": Key(
        float, "also a checkpoint once this many minutes have passed since the last; 0 = off", low=0.0, high=1e6
    ),
    "keep_checkpoints": _count("the latest K checkpoints kept, plus the best by minival when there is minival", 1),
    "report_checkpoint": Key(
        str,
        "results.json's top-1/top-5: final, or best_minival (best by minival top-1)",
        choices=("final", "best_minival"),
    ),  # cnn_jax/train/selection.py's
    "progress_bar": Key(bool, "a progress bar, on an interactive terminal only"),
}


def leaf_names(config, prefix: str = "") -> list:
    """The dotted names of a config's keys; a key the schema types as dict is one leaf."""
    names = []
    for key in config.keys():
        name, value = prefix + key, config[key]
        if hasattr(value, "keys") and SCHEMA.get(name, Key(str, "")).kind is not dict:
            names += leaf_names(value, name + ".")
        else:
            names.append(name)
    return names


def value_at(config, name: str):
    for part in name.split("."):
        config = config[part]
    return config


def field_problems(config, known: set) -> dict:
    """{name: sentence} for each key whose value its entry refuses, and each key that neither the
    schema nor `known` (base_config()'s names) has, such as a misspelled key in a config file."""
    problems = {}
    for name in leaf_names(config):
        if name in SCHEMA:
            problem = SCHEMA[name].problem(name, value_at(config, name))
        elif name not in known:
            problem = (
                f"{name} is not a config key{did_you_mean(name, SCHEMA)}; remove it or fix its name in the config file."
            )
        else:
            problem = None
        if problem:
            problems[name] = problem
    return problems
