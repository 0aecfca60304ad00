"""The whole config checked in one place, before any dataset, model or workdir is touched: each
key against its schema entry (cnn_jax/config_schema.py), then the rules between keys, then the
files and folders the config names. Every problem found is reported, one sentence each.

A rule declares the keys it reads; it is skipped when one of them already failed its own check
(a rule comparing batch_size with bn_group_size has nothing to say about batch_size='abc') or
is missing (a config written before the key existed). What only the running job knows, such as
the number of devices a batch is split over or the size of the dataset, is checked where it
becomes known (cnn_jax/train/parallel.py, cnn_jax/data/pipeline.py).
"""

import functools

from cnn_jax import input_files
from cnn_jax.config_schema import field_problems, leaf_names, value_at
from cnn_jax.errors import UserError

RULES = []


def rule(*keys):
    """Register `fn(config, processes) -> [sentence]` as a rule reading `keys`."""

    def register(fn):
        RULES.append((keys, fn))
        return fn

    return register


def _refusal(check, *args) -> list:
    """An existing check that raises UserError, as a list of its sentence."""
    try:
        check(*args)
    except UserError as e:
        return [str(e)]
    return []


def _epochs_only(c) -> float:
    """The run's length in epochs when epochs set it (num_train_steps wins when both are set), else 0."""
    return float(c.num_epochs) if c.num_train_steps <= 0 and c.num_epochs > 0 else 0.0


@rule("num_epochs", "num_train_steps")
def run_length(c, processes: int) -> list:
    if c.num_train_steps > 0 or c.num_epochs > 0:
        return []
    return ["Neither num_epochs nor num_train_steps is set; pass --config.num_epochs=N or --config.num_train_steps=N."]


@rule("schedule.name", "schedule.boundaries_epochs", "num_epochs", "num_train_steps")
def step_boundaries(c, processes: int) -> list:
    if c.schedule.name != "step":
        return []
    bounds, epochs = tuple(c.schedule.boundaries_epochs), _epochs_only(c)
    if list(bounds) != sorted(bounds):
        return [f"schedule.boundaries_epochs {bounds} must ascend; list the epochs of the drops in order."]
    if epochs and any(b >= epochs for b in bounds):
        return [
            f"schedule.boundaries_epochs {bounds} reach past the run's {epochs:g} epochs, where the learning "
            "rate never drops; set them below num_epochs."
        ]
    return []


@rule("schedule.warmup_epochs", "num_epochs", "num_train_steps")
def warmup_inside_run(c, processes: int) -> list:
    epochs = _epochs_only(c)
    if epochs and c.schedule.warmup_epochs > epochs:
        return [
            f"schedule.warmup_epochs {c.schedule.warmup_epochs:g} is longer than the run's {epochs:g} epochs; "
            "set it below num_epochs."
        ]
    return []


@rule("schedule.name", "report_checkpoint", "data.minival_size")
def choices_need_minival(c, processes: int) -> list:
    from cnn_jax.train.selection import check_selection_config

    return _refusal(check_selection_config, c)


@rule("batch_size", "eval_batch_size")
def batch_per_process(c, processes: int) -> list:
    return [
        f"{key} {size} is not divisible by the {processes} processes; set --config.{key} to a multiple of {processes}."
        for key, size in (("batch_size", c.batch_size), ("eval_batch_size", c.eval_batch_size))
        if size % processes
    ]


@rule("grad_accum_steps", "batch_size")
def micro_batches(c, processes: int) -> list:
    k = c.grad_accum_steps
    if c.batch_size % k:
        return [
            f"batch_size {c.batch_size} is not divisible by grad_accum_steps {k}; set --config.grad_accum_steps "
            "to a divisor of batch_size."
        ]
    if k > 1 and (c.batch_size // k) % processes:
        return [
            f"The micro-batch of {c.batch_size // k} examples (batch_size {c.batch_size} / grad_accum_steps {k}) is "
            f"not divisible by the {processes} processes; set --config.batch_size to a multiple of {k * processes}."
        ]
    return []


def _micro_batch(c) -> int:
    """The examples one forward pass sees: batch_size / grad_accum_steps, or batch_size while
    grad_accum_steps is missing or refused (its own check says why)."""
    k = c.get("grad_accum_steps", 1)
    valid = type(k) is int and 1 <= k <= c.batch_size and c.batch_size % k == 0
    return c.batch_size // k if valid else c.batch_size


@rule("data.mixup_alpha", "data.cutmix_alpha", "batch_size")
def mixing_pairs(c, processes: int) -> list:
    mixing = (c.data.mixup_alpha or 0) > 0 or (c.data.cutmix_alpha or 0) > 0
    if not mixing or c.batch_size % (2 * processes) == 0:
        return []
    return [
        f"Mixup/CutMix mix neighbouring examples, so each process's share of batch_size {c.batch_size} must be "
        f"even; set --config.batch_size to a multiple of {2 * processes}."
    ]


def _model(c):
    """The model the config names, or None when it cannot be built (model_builds says why)."""
    from cnn_jax import models

    try:
        return models.create_model(c.model, **dict(c.model_kwargs))
    except UserError:
        return None


@rule("model", "model_kwargs")
def model_builds(c, processes: int) -> list:
    from cnn_jax import models

    return _refusal(lambda: models.create_model(c.model, **dict(c.model_kwargs)))


@rule("model", "model_kwargs", "data.image_size", "data.channels")
def model_takes_input(c, processes: int) -> list:
    from cnn_jax.model_input import input_problem

    if _model(c) is None:
        return []
    problem = input_problem(c.model, dict(c.model_kwargs), c.data.image_size, c.data.channels)
    return [problem] if problem else []


@rule("bn_group_size", "batch_size", "model", "model_kwargs")
def bn_groups(c, processes: int) -> list:
    group, model = c.bn_group_size, _model(c) if c.bn_group_size else None
    if not group or model is None:
        return []
    if "bn_group_size" not in type(model).__dataclass_fields__:
        return [
            f"bn_group_size={group} needs a model with BatchNorm, and {c.model} has none; set --config.bn_group_size=0."
        ]
    micro = _micro_batch(c)  # BatchNorm sees one micro-batch at a time
    if micro != c.batch_size and micro % group:
        return [
            f"The micro-batch of {micro} examples (batch_size {c.batch_size} / grad_accum_steps "
            f"{c.batch_size // micro}) is not divisible by bn_group_size {group}; pick a group size that divides it."
        ]
    if c.batch_size % group:
        return [
            f"batch_size {c.batch_size} is not divisible by bn_group_size {group}; pick a group size that "
            "divides the global batch."
        ]
    return []


@rule("transfer.init_from", "transfer.freeze", "transfer.backbone_lr_scale")
def transfer_needs_weights(c, processes: int) -> list:
    t = c.transfer
    if t.init_from or (not t.freeze and t.backbone_lr_scale == 1.0):
        return []
    return [
        "transfer.freeze and transfer.backbone_lr_scale act on loaded weights, and transfer.init_from is empty; "
        "set --config.transfer.init_from to a workdir or a weights file."
    ]


@rule("dataset")
def dataset_folder(c, processes: int) -> list:
    return input_files.image_folder_problems(c.dataset) if input_files.looks_like_path(c.dataset) else []


@rule("data_dir", "data.idx_dir", "transfer.init_from")
def named_files(c, processes: int) -> list:
    return (
        input_files.folder_problems("data_dir", c.data_dir, must_exist=False)
        + input_files.folder_problems("data.idx_dir", c.data.idx_dir, must_exist=True)
        + input_files.weights_problems("transfer.init_from", c.transfer.init_from)
    )


@functools.cache
def _base_names() -> frozenset:
    from cnn_jax.config import base_config

    return frozenset(leaf_names(base_config()))


def _present(config, key: str) -> bool:
    try:
        value_at(config, key)
    except (KeyError, AttributeError):
        return False
    return True


def config_problems(config, processes: int = 1) -> list:
    """Every problem of `config` as one sentence each; `processes`: the process count, when known."""
    fields = field_problems(config, _base_names())
    problems = list(fields.values())
    for keys, check in RULES:
        if all(k not in fields and _present(config, k) for k in keys):
            problems += check(config, max(1, int(processes)))
    return problems


def check_config(config, processes: int = 1) -> None:
    """Raise one UserError stating every problem of `config`."""
    input_files.raise_problems(config_problems(config, processes))
