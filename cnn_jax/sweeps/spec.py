"""A sweep file and what it asks for: the search space, the sampler and the pruner.

A sweep file (experiments/sweeps/NAME.py) is plain Python defining

    BASE      = "configs/lenet5.py"                    # a config spec, as for `cnn-jax train`
    OVERRIDES = {"num_epochs": 10}                     # fixed dotted-key overrides (optional)
    SPACE     = {"optimizer.lr": [1e-3, 3e-3],         # a list: grid points / categories
                 "optimizer.momentum": ("float", 0.8, 0.99),
                 "optimizer.weight_decay": ("log", 1e-6, 1e-3),
                 "batch_size": ("int", 16, 64),         # for "grid": every integer in [lo, hi]
                 "optimizer.name": ("choice", ["sgd", "adamw"])}
    OBJECTIVE = "top1"                                 # top1 or top5, on minival (optional)
    DIRECTION = "maximize"                             # optional
    TRIALS    = 4                                      # the budget
    SAMPLER   = "grid"                                 # grid | random | tpe
    PRUNER    = None                                   # optional: "median", ("median", {...}), ...
    SEED      = 0                                      # optional

Parameter names are config keys, so a trial is `BASE` + `OVERRIDES` + its sampled values.
The objective is measured on minival, so BASE or OVERRIDES must set `data.minival_size`.
"""

import dataclasses
import hashlib
import json
import pathlib

import optuna

from cnn_jax.config import config_from_flags
from cnn_jax.errors import UserError, did_you_mean
from cnn_jax.input_files import load_python_file

SAMPLERS = ("grid", "random", "tpe")
KINDS = ("float", "log", "int", "choice")
PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}
OBJECTIVES = ("top1", "top5")  # the numbers an evaluation reports, so pruning can watch them


@dataclasses.dataclass(frozen=True)
class Sweep:
    path: pathlib.Path
    base: str
    overrides: dict
    space: dict
    objective: str = "top1"
    direction: str = "maximize"
    trials: int = 10
    sampler: str = "tpe"
    pruner: object = None
    seed: int = 0

    @property
    def name(self) -> str:
        return self.path.stem

    def definition(self) -> dict:
        """What makes two runs of a sweep the same study (the budget and the pruner may change)."""
        return {
            "base": self.base,
            "overrides": self.overrides,
            "space": self.space,
            "objective": self.objective,
            "direction": self.direction,
            "sampler": self.sampler,
            "seed": self.seed,
        }

    def budget(self) -> int:
        """TRIALS, but never more than the grid has points: a grid point is not run twice."""
        return min(self.trials, len(grid_points(self.space))) if self.sampler == "grid" else self.trials


def _module(path: pathlib.Path):
    return load_python_file(path, f"_cnn_jax_sweep_{path.stem}")  # a syntax error is named by file and line


def load_sweep(path) -> Sweep:
    file = pathlib.Path(path)
    if not file.is_file():
        raise UserError(
            f"Sweep file {str(path)!r} does not exist; pass a file from experiments/sweeps/, "
            "e.g. experiments/sweeps/digits_lr.py."
        )
    m = _module(file)
    for required in ("BASE", "SPACE"):
        if not getattr(m, required, None):
            raise UserError(
                f"Sweep file {str(path)!r} defines no {required}; add it (see experiments/sweeps/digits_lr.py)."
            )
    sweep = Sweep(
        path=file,
        base=str(m.BASE),
        overrides=dict(getattr(m, "OVERRIDES", {}) or {}),
        space={k: _normalise(k, v) for k, v in dict(m.SPACE).items()},
        objective=getattr(m, "OBJECTIVE", "top1"),
        direction=getattr(m, "DIRECTION", "maximize"),
        trials=int(getattr(m, "TRIALS", 10)),
        sampler=getattr(m, "SAMPLER", "tpe"),
        pruner=getattr(m, "PRUNER", None),
        seed=int(getattr(m, "SEED", 0)),
    )
    _validate(sweep)
    return sweep


def _normalise(name: str, spec) -> dict:
    """A SPACE entry as a tagged dict: {"kind": "list"|"choice", "values"} or {"kind", "lo", "hi"}.

    The tagged form is unambiguous and JSON-comparable, so a stored sweep definition can be
    checked against the file when a sweep is continued.
    """
    if isinstance(spec, list) and spec:
        return {"kind": "list", "values": list(spec)}
    if isinstance(spec, tuple) and spec and spec[0] in KINDS:
        kind, *args = spec
        if kind == "choice" and len(args) == 1 and isinstance(args[0], (list, tuple)) and args[0]:
            return {"kind": "choice", "values": list(args[0])}
        if kind != "choice" and len(args) == 2 and all(isinstance(a, (int, float)) for a in args):
            lo, hi = args
            if lo >= hi or (kind == "log" and lo <= 0):
                raise UserError(f"SPACE[{name!r}] = {spec!r} needs lo < hi{' and lo > 0' if kind == 'log' else ''}.")
            return {"kind": kind, "lo": lo, "hi": hi}
    raise UserError(
        f"SPACE[{name!r}] = {spec!r} is not a search space; write a non-empty list of values, "
        "('float', lo, hi), ('log', lo, hi), ('int', lo, hi) or ('choice', [...])."
    )


def _validate(s: Sweep) -> None:
    if s.sampler not in SAMPLERS:
        raise UserError(
            f"SAMPLER {s.sampler!r} is unknown{did_you_mean(str(s.sampler), SAMPLERS)}; "
            f"use one of {', '.join(SAMPLERS)}."
        )
    if s.direction not in ("maximize", "minimize"):
        raise UserError(f"DIRECTION must be 'maximize' or 'minimize', not {s.direction!r}.")
    if s.objective not in OBJECTIVES:
        raise UserError(
            f"OBJECTIVE {s.objective!r} is not reported by an evaluation; use one of {', '.join(OBJECTIVES)}."
        )
    if s.trials < 1:
        raise UserError(f"TRIALS must be at least 1, not {s.trials}.")
    if s.sampler == "grid":
        for name, spec in s.space.items():
            if spec["kind"] in ("float", "log"):
                raise UserError(
                    f"SPACE[{name!r}] is a continuous range, which a grid cannot enumerate; "
                    "give a list of values or use SAMPLER = 'random' or 'tpe'."
                )
    make_pruner(s.pruner)
    config, _ = config_from_flags(trial_argv(s, {}))
    for key in s.space:
        _check_key(config, key)
    _check_space_values(s)
    if not config.data.minival_size and "data.minival_size" not in s.space:
        raise UserError(
            f"Sweep {s.name!r} would rank its trials by the reported split's accuracy; hold out "
            'minival from the training split with OVERRIDES = {..., "data.minival_size": N}.'
        )


def _check_space_values(s: Sweep) -> None:
    """Each value a trial can take (a list's values, a range's ends) within its key's schema, so that
    a bad value fails the sweep before its first trial rather than as a failed trial."""
    from cnn_jax.config_schema import SCHEMA
    from cnn_jax.input_files import raise_problems

    problems = []
    for key, spec in s.space.items():
        for value in spec.get("values", [spec.get("lo"), spec.get("hi")]):
            problem = SCHEMA[key].problem(key, value) if key in SCHEMA else None
            if problem:
                problems.append(f"SPACE[{key!r}] of sweep {s.name!r}: {problem}")
    raise_problems(problems)


def _check_key(config, key: str) -> None:
    node = config
    for i, part in enumerate(key.split(".")):
        if not hasattr(node, "keys") or part not in node:
            choices = list(node.keys()) if hasattr(node, "keys") else []
            raise UserError(
                f"SPACE key {key!r} is not a config key ({'.'.join(key.split('.')[: i + 1])!r} "
                f"is unknown{did_you_mean(part, choices)}); fix the sweep file."
            )
        node = node[part]


def trial_argv(s: Sweep, params: dict) -> list:
    """`--config=BASE --config.KEY=VALUE ...`, as a suite entry of the same config and overrides;
    BASE is found from the working directory or any parent of the sweep file."""
    from cnn_jax.train.suite import entry_argv

    return entry_argv({"config": s.base, "overrides": {**s.overrides, **params}}, s.path)


def grid_values(spec: dict) -> list:
    if "values" in spec:
        return list(spec["values"])
    if spec["kind"] == "int":
        return list(range(int(spec["lo"]), int(spec["hi"]) + 1))  # every integer, both ends included
    raise UserError(f"A continuous range {spec} cannot be enumerated; give a list of values.")


def grid_points(space: dict) -> list:
    points = [{}]
    for name, spec in space.items():
        points = [{**p, name: v} for p in points for v in grid_values(spec)]
    return points


def suggest(trial, name: str, spec: dict):
    """One parameter of a trial; lists and choices are categorical to Optuna."""
    if "values" in spec:
        return trial.suggest_categorical(name, spec["values"])
    if spec["kind"] == "int":
        return trial.suggest_int(name, int(spec["lo"]), int(spec["hi"]))
    return trial.suggest_float(name, float(spec["lo"]), float(spec["hi"]), log=spec["kind"] == "log")


def axis_kind(spec: dict) -> str:
    """How a plot shows a parameter: log for log ranges and for numbers spanning 10x or more."""
    if spec["kind"] == "log":
        return "log"
    values = spec["values"] if "values" in spec else [spec["lo"], spec["hi"]]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "categorical"
    return "log" if min(values) > 0 and max(values) >= 10 * min(values) else "linear"


def make_pruner(spec):
    """None | "median" | ("median", {kwargs}) | an optuna.pruners.BasePruner."""
    if spec is None:
        return optuna.pruners.NopPruner()
    if isinstance(spec, optuna.pruners.BasePruner):
        return spec
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]) if len(spec) > 1 else {})
    if name not in PRUNERS:
        raise UserError(
            f"PRUNER {name!r} is unknown{did_you_mean(str(name), PRUNERS)}; use one of {', '.join(PRUNERS)}."
        )
    try:
        return PRUNERS[name](**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"PRUNER {spec!r} is invalid ({e}); fix its arguments.") from None


def _trial_seed(seed: int, number: int) -> int:
    digest = hashlib.sha256(json.dumps([seed, number]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _seeded_per_trial(cls):
    """`cls` whose random stream is reseeded from (SEED, trial number) when each trial starts.

    Every worker then draws what one worker would for that trial number, so workers on
    several processes or machines never repeat each other's draws, and a sweep's trials are
    reproducible whoever runs them (TPE still depends on the finished trials it sees).
    """

    class TrialSeeded(cls):
        def before_trial(self, study, trial):
            for sampler in (self, getattr(self, "_random_sampler", None)):
                rng = getattr(getattr(sampler, "_rng", None), "rng", None)
                if rng is not None:
                    rng.seed(_trial_seed(self._cnn_jax_seed, trial.number))
            super().before_trial(study, trial)

    TrialSeeded.__name__ = cls.__name__
    return TrialSeeded


def make_sampler(s: Sweep):
    if s.sampler == "grid":
        # Trial k takes grid point k of a seeded shuffle, whichever worker creates it.
        return optuna.samplers.GridSampler({k: grid_values(v) for k, v in s.space.items()}, seed=s.seed)
    cls = _seeded_per_trial(optuna.samplers.RandomSampler if s.sampler == "random" else optuna.samplers.TPESampler)
    sampler = cls(seed=s.seed)
    sampler._cnn_jax_seed = s.seed
    return sampler
