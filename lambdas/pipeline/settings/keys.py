"""Each tuning setting's values: the parser and JSON Schema of every key (`KEYS`).

`tuning_settings.TuningSettings` applies these key by key; the rules across keys live there, and
who owns each key in `trust.py`. A parser reads the settings it extends through `Base`, so this
module does not import the one that imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.aws.errors import SettingsError
from pipeline.settings import limits
from pipeline.settings.checks import choice, choose, flag, integer, number, positive, sub
from pipeline.settings.search_space import (
    DOCUMENTED_RANGES,
    OPTIMIZERS,
    SCALING_TYPES,
    NumericRange,
    hyperparameters_read_by,
    scaling_error,
)

LAYOUTS = ("definitions", "job_per_optimizer", "flat")
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
EARLY_STOPPING = ("Off", "Auto")
APPROVAL_MODES = ("manual", "auto")
NUM_LAYERS = (18, 34, 50, 101, 152, 200)
PRECISIONS = ("float32", "float16")
# GPU families the image-classification algorithm documents for training.
GPU_FAMILIES = ("ml.p2.", "ml.p3.", "ml.p3dn.", "ml.g4dn.", "ml.g5.")


@dataclass(frozen=True)
class Completion:
    target_accuracy: float | None = None
    # Off by default: in the 10-seed benchmark, stopping after 10 jobs without improvement saved
    # 24% of the epochs but lowered the mean best accuracy (0.893 vs 0.901) and the worst seed
    # (0.817 vs 0.878). Set it to trade accuracy for money; null turns it off again.
    max_jobs_not_improving: int | None = None
    complete_on_convergence: bool = False


# Where a run's warm start may find its parents (tuning/history.py): the dataset's previous run,
# else the most similar earlier runs ("auto"); only the dataset's previous run ("previous"); none.
WARM_START = ("auto", "previous", "off")


def _warm_start(value: Any, key: str, _: Base) -> str:
    if isinstance(value, bool):  # before "auto" existed: true was "previous"
        return "previous" if value else "off"
    return str(choose(value, key, WARM_START))


# A test split smaller than this does not gate auto-approval: accuracy on n images has a standard
# error of sqrt(p(1-p)/n), up to 0.05 at n = 100 (0.16 at n = 10), too coarse to trust alone.
MIN_TEST_IMAGES = 100
# What a copy across splits (same size and ETag in the listing) does: refuse the run, or go ahead
# with a warning in the notice and without auto-approval.
COPIES_ACROSS_SPLITS = ("refuse", "warn")


@dataclass(frozen=True)
class Approval:
    mode: str = "manual"
    threshold: float = 0.9
    min_test_images: int = MIN_TEST_IMAGES


class Base(Protocol):
    """What a key's parser reads of the settings it is applied to (a TuningSettings)."""

    @property
    def ranges(self) -> tuple[NumericRange, ...]: ...

    @property
    def completion(self) -> Completion: ...

    @property
    def approval(self) -> Approval: ...


def _instance_type(value: Any, key: str, _: Base) -> str:
    if not isinstance(value, str) or not value.startswith(GPU_FAMILIES):
        raise SettingsError(
            f"{key} must be a GPU training instance type (families "
            f"{', '.join(f.rstrip('.') for f in GPU_FAMILIES)}), got {value!r}: "
            "the image-classification algorithm trains on GPUs only."
        )
    if value not in limits.TRAINING_INSTANCES:
        near = difflib.get_close_matches(value, list(limits.TRAINING_INSTANCES), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SettingsError(
            f"{key}: {value!r} is not a training instance type of the documented GPU families.{hint} "
            f"Known: {', '.join(limits.TRAINING_INSTANCES)}."
        )
    return value


def _instance_types(value: Any, key: str, base: Base) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SettingsError(f"{key} must be a list of GPU training instance types")
    return tuple(_instance_type(v, key, base) for v in value)


def _image_shape(value: Any, key: str, _: Base) -> str:
    parts = value.split(",") if isinstance(value, str) else []
    if len(parts) != 3 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise SettingsError(f"{key} must look like '3,224,224' (channels,height,width), got {value!r}")
    c, h, w = (int(p) for p in parts)
    if c not in (1, 3) or h < 8 or w < 8:
        raise SettingsError(f"{key}: channels must be 1 or 3 and sides at least 8, got {value!r}")
    return f"{c},{h},{w}"


def _optimizers(value: Any, key: str, _: Base) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SettingsError(f"{key} must be a non-empty list drawn from {', '.join(OPTIMIZERS)}")
    for v in value:
        choice(v, key, OPTIMIZERS)
    if len(set(value)) != len(value):
        raise SettingsError(f"{key} lists an optimizer twice: {value}")
    return tuple(o for o in OPTIMIZERS if o in value)


def _ranges(value: Any, key: str, base: Base) -> tuple[NumericRange, ...]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object of hyperparameter -> {{min, max, scaling}}")
    current = {r.name: r for r in base.ranges}
    for name, spec in value.items():
        where = sub(key, name)
        if name not in DOCUMENTED_RANGES:
            raise SettingsError(
                f"{where}: not a tunable numeric hyperparameter. Allowed: {', '.join(DOCUMENTED_RANGES)}"
            )
        if not isinstance(spec, Mapping):
            raise SettingsError(f"{where} must be an object with min, max and/or scaling")
        unknown = sorted(set(spec) - {"min", "max", "scaling"})
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}; use min, max, scaling")
        old = current[name]
        lo = number(spec.get("min", old.min_value), sub(where, "min"))
        hi = number(spec.get("max", old.max_value), sub(where, "max"))
        scaling = choice(spec.get("scaling", old.scaling), sub(where, "scaling"), SCALING_TYPES)
        if old.kind == "Integer" and (lo != int(lo) or hi != int(hi)):
            raise SettingsError(f"{where}: {name} is an Integer range, bounds must be whole numbers")
        if lo >= hi:
            raise SettingsError(f"{where}: min ({lo:g}) must be less than max ({hi:g})")
        if lo < 0:
            raise SettingsError(f"{where}: min ({lo:g}) must not be negative")
        if name in limits.UNIT_INTERVAL_HYPERPARAMETERS and hi > 1:
            raise SettingsError(
                f"{where}: max ({hi:g}) is outside {name}'s valid values, 0 to 1 ({limits.ALGORITHM_PAGE}). "
                "Set max to at most 1."
            )
        if name == "mini_batch_size" and lo < 1:
            raise SettingsError(f"{where}: min must be at least 1")
        problem = scaling_error(old.kind, scaling, lo, hi)
        if problem:
            raise SettingsError(f"{where}: {problem}")
        current[name] = NumericRange(name, old.kind, lo, hi, scaling)
    return tuple(current[n] for n in DOCUMENTED_RANGES)


def _optimizer_ranges(value: Any, key: str, base: Base) -> tuple[tuple[str, tuple[NumericRange, ...]], ...]:
    """optimizer -> its own ranges, over the run's: e.g. a learning_rate range for adam that is not sgd's."""
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object of optimizer -> {{hyperparameter -> {{min, max, scaling}}}}")
    own: dict[str, tuple[NumericRange, ...]] = {}
    for optimizer, spec in value.items():
        where = sub(key, str(optimizer))
        choice(optimizer, where, OPTIMIZERS)
        unread = sorted(set(spec) - set(hyperparameters_read_by(optimizer))) if isinstance(spec, Mapping) else []
        if unread:
            raise SettingsError(
                f'{where}: {optimizer} does not read {", ".join(unread)} ("Image classification hyperparameters" '
                f"page); its definition tunes {', '.join(hyperparameters_read_by(optimizer))}. Remove the others."
            )
        own[optimizer] = tuple(r for r in _ranges(spec, where, base) if r.name in spec)  # only what it sets
    return tuple((o, own[o]) for o in OPTIMIZERS if o in own)


def _completion(value: Any, key: str, base: Base) -> Completion:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object")
    allowed = {f.name for f in dataclasses.fields(Completion)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SettingsError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    out = base.completion
    if value.get("target_accuracy") is not None:
        t = number(value["target_accuracy"], sub(key, "target_accuracy"))
        if not 0 < t <= 1:
            raise SettingsError(f"{sub(key, 'target_accuracy')} must be in (0, 1], got {t}")
        out = dataclasses.replace(out, target_accuracy=t)
    if "max_jobs_not_improving" in value:  # null turns the default off
        n = value["max_jobs_not_improving"]
        n = None if n is None else integer(n, sub(key, "max_jobs_not_improving"), 3)
        out = dataclasses.replace(out, max_jobs_not_improving=n)
    if "complete_on_convergence" in value:
        out = dataclasses.replace(
            out, complete_on_convergence=flag(value["complete_on_convergence"], sub(key, "complete_on_convergence"))
        )
    return out


def _approval(value: Any, key: str, base: Base) -> Approval:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object with mode and threshold")
    unknown = sorted(set(value) - {"mode", "threshold", "min_test_images"})
    if unknown:
        raise SettingsError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: mode, threshold, min_test_images")
    mode = choice(value.get("mode", base.approval.mode), sub(key, "mode"), APPROVAL_MODES)
    threshold = number(value.get("threshold", base.approval.threshold), sub(key, "threshold"))
    if not 0 < threshold <= 1:
        raise SettingsError(f"{sub(key, 'threshold')} must be in (0, 1], got {threshold}")
    smallest = integer(value.get("min_test_images", base.approval.min_test_images), sub(key, "min_test_images"), 1)
    return Approval(mode=mode, threshold=threshold, min_test_images=smallest)


Parser = Callable[[Any, str, Base], Any]


@dataclass(frozen=True)
class Key:
    """One setting: how its value is parsed and checked, and the JSON Schema of that value
    (manifest_schema.py assembles the manifest's schema from these)."""

    parse: Parser
    schema: dict[str, Any]


def _integer(lo: int, hi: int | None = None, *, nullable: bool = False) -> Key:
    def parse(value: Any, key: str, _: Base) -> int | None:
        return None if nullable and value is None else integer(value, key, lo, hi)

    schema: dict[str, Any] = {"type": ["integer", "null"] if nullable else "integer", "minimum": lo}
    return Key(parse, schema if hi is None else {**schema, "maximum": hi})


def _one_of(allowed: tuple[Any, ...]) -> Key:
    return Key(lambda v, k, _: choose(v, k, allowed), {"enum": list(allowed)})


def _flag() -> Key:
    return Key(lambda v, k, _: flag(v, k), {"type": "boolean"})


def _positive_or_null() -> Key:
    return Key(
        lambda v, k, _: None if v is None else positive(v, k), {"type": ["number", "null"], "exclusiveMinimum": 0}
    )


_RANGE_SCHEMA = {
    "type": "object",
    "properties": {
        "min": {"type": "number", "minimum": 0},
        "max": {"type": "number", "minimum": 0},
        "scaling": {"enum": list(SCALING_TYPES)},
    },
    "additionalProperties": False,
}
_UNIT_FRACTION = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}

KEYS: dict[str, Key] = {
    "instance_type": Key(_instance_type, {"enum": list(limits.TRAINING_INSTANCES)}),
    "volume_size_gb": _integer(1, limits.EBS_VOLUME_GB.value),
    "max_training_jobs": _integer(1, limits.TRAINING_JOBS_PER_TUNING_JOB.value),
    "max_parallel_jobs": _integer(1, limits.PARALLEL_TRAINING_JOBS.value),
    "max_runtime_seconds": _integer(120, limits.TRAINING_JOB_RUNTIME.value),
    "strategy": _one_of(STRATEGIES),
    "early_stopping": _one_of(EARLY_STOPPING),
    "use_spot": _flag(),
    "max_wait_seconds": _integer(120, nullable=True),
    "epochs": _integer(1, 1000),
    "num_layers": _one_of(NUM_LAYERS),
    "image_shape": Key(_image_shape, {"type": "string", "pattern": r"^ *[13] *, *[0-9]+ *, *[0-9]+ *$"}),
    "use_pretrained_model": _flag(),
    "precision_dtype": _one_of(PRECISIONS),
    "layout": _one_of(LAYOUTS),
    "optimizers": Key(
        _optimizers, {"type": "array", "items": {"enum": list(OPTIMIZERS)}, "minItems": 1, "uniqueItems": True}
    ),
    "ranges": Key(
        _ranges,
        {"type": "object", "properties": {n: _RANGE_SCHEMA for n in DOCUMENTED_RANGES}, "additionalProperties": False},
    ),
    "optimizer_ranges": Key(
        _optimizer_ranges,
        {
            "type": "object",
            "properties": {
                o: {
                    "type": "object",
                    "properties": {n: _RANGE_SCHEMA for n in hyperparameters_read_by(o)},
                    "additionalProperties": False,
                }
                for o in OPTIMIZERS
            },
            "additionalProperties": False,
        },
    ),
    "completion": Key(
        _completion,
        {
            "type": "object",
            "properties": {
                "target_accuracy": {"anyOf": [_UNIT_FRACTION, {"type": "null"}]},
                "max_jobs_not_improving": {"type": ["integer", "null"], "minimum": 3},
                "complete_on_convergence": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
    ),
    "warm_start": Key(_warm_start, {"anyOf": [{"enum": list(WARM_START)}, {"type": "boolean"}]}),
    "approval": Key(
        _approval,
        {
            "type": "object",
            "properties": {
                "mode": {"enum": list(APPROVAL_MODES)},
                "threshold": _UNIT_FRACTION,
                "min_test_images": {"type": "integer", "minimum": 1},
            },
            "additionalProperties": False,
        },
    ),
    "poll_seconds": _integer(1, 3600),
    "evaluation_instance_type": _one_of(limits.TRANSFORM_INSTANCE_TYPES),
    "evaluation_max_seconds": _integer(300, 86_400),
    "copies_across_splits": _one_of(COPIES_ACROSS_SPLITS),
    "max_cost_usd": _positive_or_null(),
    "price_per_hour_usd": _positive_or_null(),
    "allowed_instance_types": Key(
        _instance_types, {"type": "array", "items": {"enum": list(limits.TRAINING_INSTANCES)}}
    ),
}
