"""Tuning settings: one typed, validated schema for `cdk.json` context and manifest overrides.

The deployment's defaults (from `cdk.json`) and a dataset manifest's `tuning` block go through
the same `TuningSettings.from_mapping`, so a value rejected at synth is rejected in a manifest
with the same words. A manifest goes through `from_manifest` on top: the people who upload
datasets are not the people who deploy the stack, so a manifest may set what is the dataset's
business and may only tighten what the deployment owns (`OWNERSHIP`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline import limits
from pipeline.search_space import (
    DEFAULT_PRESET,
    OPTIMIZERS,
    PRESETS,
    SCALING_TYPES,
    SEED_RANGES,
    NumericRange,
    scaling_error,
)

LAYOUTS = ("definitions", "jobs", "flat")
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
EARLY_STOPPING = ("Off", "Auto")
APPROVAL_MODES = ("manual", "auto")
NUM_LAYERS = (18, 34, 50, 101, 152, 200)
PRECISIONS = ("float32", "float16")
# GPU families the image-classification algorithm documents for training.
GPU_FAMILIES = ("ml.p2.", "ml.p3.", "ml.p3dn.", "ml.g4dn.", "ml.g5.")

# Who may change what. DATASET: a manifest may set it. TIGHTEN: the deployment's value is a
# limit; a manifest may only lower it (or, for use_spot, turn it on). ALLOW_LIST: a manifest
# may pick one of the deployment's allowed values. DEPLOYMENT: cdk.json only.
DATASET, TIGHTEN, ALLOW_LIST, DEPLOYMENT = "dataset", "tighten", "allow-list", "deployment"
OWNERSHIP: dict[str, str] = {
    "strategy": DATASET,
    "early_stopping": DATASET,
    "epochs": DATASET,
    "num_layers": DATASET,
    "image_shape": DATASET,
    "use_pretrained_model": DATASET,
    "precision_dtype": DATASET,
    "layout": DATASET,
    "optimizers": DATASET,
    "preset": DATASET,
    "ranges": DATASET,
    "completion": DATASET,
    "warm_start": DATASET,
    "max_training_jobs": TIGHTEN,
    "max_parallel_jobs": TIGHTEN,
    "max_runtime_seconds": TIGHTEN,
    "max_wait_seconds": TIGHTEN,
    "volume_size_gb": TIGHTEN,
    "use_spot": TIGHTEN,
    "max_cost_usd": TIGHTEN,
    "instance_type": ALLOW_LIST,
    "allowed_instance_types": DEPLOYMENT,
    "price_per_hour_usd": DEPLOYMENT,
    "approval": DEPLOYMENT,
    "poll_seconds": DEPLOYMENT,
}


class SettingsError(ValueError):
    """A setting is invalid. The message names where it came from, the key and the fix."""


@dataclass(frozen=True)
class Completion:
    target_accuracy: float | None = None
    # Off by default: in the 10-seed benchmark, stopping after 10 jobs without improvement saved
    # 24% of the epochs but lowered the mean best accuracy (0.893 vs 0.901) and the worst seed
    # (0.817 vs 0.878). Set it to trade accuracy for money; null turns it off again.
    max_jobs_not_improving: int | None = None
    complete_on_convergence: bool = False


@dataclass(frozen=True)
class Approval:
    mode: str = "manual"
    threshold: float = 0.9


@dataclass(frozen=True)
class TuningSettings:
    instance_type: str = "ml.g4dn.xlarge"
    volume_size_gb: int = 50
    max_training_jobs: int = 20
    max_parallel_jobs: int = 2
    max_runtime_seconds: int = 3600
    strategy: str = "Bayesian"
    early_stopping: str = "Off"
    use_spot: bool = False
    max_wait_seconds: int | None = None
    epochs: int = 30
    num_layers: int = 18
    image_shape: str = "3,224,224"
    use_pretrained_model: bool = True
    precision_dtype: str = "float32"
    layout: str = "definitions"
    optimizers: tuple[str, ...] = OPTIMIZERS
    # The ranges start from a named preset (search_space.PRESETS); `ranges` overrides on top.
    preset: str = DEFAULT_PRESET
    ranges: tuple[NumericRange, ...] = tuple(PRESETS[DEFAULT_PRESET].values())
    completion: Completion = field(default_factory=Completion)
    warm_start: bool = False
    approval: Approval = field(default_factory=Approval)
    poll_seconds: int = 60
    # Instance types a manifest may choose; empty means only `instance_type`.
    allowed_instance_types: tuple[str, ...] = ()
    # Cost guardrail: refuse runs whose worst case is above this (None: no cap).
    max_cost_usd: float | None = None
    # Override the price table (data/training-prices.json) for this instance type and region.
    price_per_hour_usd: float | None = None

    # ------------------------------------------------------------------ parsing

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str, base: TuningSettings | None = None) -> TuningSettings:
        """Build settings from `data` over `base` (defaults when None); raise SettingsError."""
        base = base or cls()
        if not isinstance(data, Mapping):
            raise SettingsError(f"{where}: the tuning settings must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(
                f"{where}: unknown key(s) {', '.join(unknown)}. Allowed keys: {', '.join(sorted(known))}"
            )
        if "preset" in data:
            preset = _choice(data["preset"], f"{where}: key 'preset'", tuple(PRESETS))
            base = dataclasses.replace(base, preset=preset, ranges=tuple(PRESETS[preset].values()))
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "preset":
                continue
            values[name] = _PARSERS[name](value, f"{where}: key '{name}'", base)
        settings = dataclasses.replace(base, **values)
        settings.check(where)
        return settings

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any], *, where: str, deployment: TuningSettings) -> TuningSettings:
        """A manifest's `tuning` block over the deployment's settings, within what it may change."""
        if isinstance(data, Mapping):
            for key in data:
                if OWNERSHIP.get(key) == DEPLOYMENT:
                    raise SettingsError(
                        f"{where}: key '{key}' is owned by the deployment: cdk.json (the environment's "
                        f"'tuning' block) sets it for every dataset, and a manifest cannot. Remove '{key}' from "
                        "the manifest; to change it, the team that deploys the stack edits cdk.json and redeploys."
                    )
        # The manifest chooses its instance type among the deployment's, never its own.
        deployment = dataclasses.replace(deployment, allowed_instance_types=deployment.instance_types_allowed)
        settings = cls.from_mapping(data, where=where, base=deployment)
        for key in data:
            problem = _loosens(key, getattr(settings, key), deployment)
            if problem:
                raise SettingsError(
                    f"{where}: key '{key}' {problem}: cdk.json owns this limit (the environment's 'tuning' "
                    f"block) and a manifest may only tighten it. Tighten it in the manifest or remove it; to "
                    "loosen it, the team that deploys the stack edits cdk.json and redeploys."
                )
        return settings

    # ------------------------------------------------------------------ rules across keys

    def check(self, where: str) -> None:
        self._check_algorithm(where)
        self._check_resources(where)
        if self.max_parallel_jobs > self.max_training_jobs:
            raise SettingsError(
                f"{where}: key 'max_parallel_jobs' ({self.max_parallel_jobs}) is greater than "
                f"'max_training_jobs' ({self.max_training_jobs}). Lower max_parallel_jobs."
            )
        if self.layout == "jobs" and self.max_parallel_jobs < len(self.optimizers):
            raise SettingsError(
                f"{where}: key 'max_parallel_jobs' ({self.max_parallel_jobs}) must be at least the number of "
                f"optimizers ({len(self.optimizers)}) with layout 'jobs', which runs one tuning job per optimizer "
                "side by side, each with at least one instance. Use layout 'definitions', fewer optimizers, or "
                "raise max_parallel_jobs (and the GPU quota) in cdk.json."
            )
        if self.layout == "definitions":
            if self.early_stopping != "Off":
                raise SettingsError(
                    f"{where}: key 'early_stopping' must be 'Off' with layout 'definitions': "
                    "SageMaker does not allow TrainingJobEarlyStoppingType=Auto with "
                    "TrainingJobDefinitions. Use layout 'jobs' to keep early stopping."
                )
            if self.warm_start:
                raise SettingsError(
                    f"{where}: key 'warm_start' must be false with layout 'definitions': "
                    "SageMaker does not allow WarmStartConfig with TrainingJobDefinitions. "
                    "Use layout 'jobs' or 'flat' to warm start."
                )
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            raise SettingsError(
                f"{where}: key 'early_stopping' must be 'Off' with strategy 'Hyperband' (Hyperband stops jobs itself)."
            )
        if self.strategy == "Grid":
            raise SettingsError(
                f"{where}: key 'strategy': 'Grid' only searches categorical ranges, and this "
                "algorithm's learning_rate and mini_batch_size are numeric. "
                "Use Bayesian, Random or Hyperband."
            )
        if self.use_spot and self.max_wait_seconds is not None:
            if self.max_wait_seconds < self.max_runtime_seconds:
                raise SettingsError(
                    f"{where}: key 'max_wait_seconds' ({self.max_wait_seconds}) must be >= "
                    f"'max_runtime_seconds' ({self.max_runtime_seconds})."
                )

    def _check_algorithm(self, where: str) -> None:
        if self.use_pretrained_model and self.image_shape != limits.PRETRAINED_IMAGE_SHAPE:
            raise SettingsError(
                f"{where}: key 'image_shape' is {self.image_shape!r} but use_pretrained_model is true, and "
                f"pretrained networks take {limits.PRETRAINED_IMAGE_SHAPE} only ({limits.ALGORITHM_PAGE}). "
                f"Set image_shape to '{limits.PRETRAINED_IMAGE_SHAPE}' or use_pretrained_model to false."
            )

    def _check_resources(self, where: str) -> None:
        if self.price_per_hour_usd is not None and len(self.allowed_instance_types) > 1:
            raise SettingsError(
                f"{where}: key 'price_per_hour_usd' prices one instance type, but allowed_instance_types lists "
                f"{len(self.allowed_instance_types)}: a manifest could pick a dearer one at this price. Remove "
                "price_per_hour_usd (the price table covers every known type) or allow one instance type."
            )
        allowed = self.allowed_instance_types
        if allowed and self.instance_type not in allowed:
            raise SettingsError(
                f"{where}: key 'instance_type' is {self.instance_type!r}, which this deployment does not allow. "
                f"Allowed: {', '.join(allowed)} (cdk.json 'allowed_instance_types')."
            )
        storage = limits.TRAINING_INSTANCES[self.instance_type]
        if storage is not None and self.volume_size_gb > storage:
            raise SettingsError(
                f"{where}: key 'volume_size_gb' ({self.volume_size_gb}) is more than the {storage} GB of local "
                f"storage of {self.instance_type}, which SageMaker mounts instead of an EBS volume "
                f"({limits.INSTANCE_STORAGE_SOURCE}). Set volume_size_gb to at most {storage}, or pick an instance "
                "type with more storage."
            )

    # ------------------------------------------------------------------ derived values

    @property
    def instance_types_allowed(self) -> tuple[str, ...]:
        return self.allowed_instance_types or (self.instance_type,)

    def tuning_job_budgets(self) -> list[tuple[int, int]]:
        """(MaxNumberOfTrainingJobs, MaxParallelTrainingJobs) of each tuning job of the run.

        Layout `jobs` splits both the total and the parallel jobs between the optimizers' tuning
        jobs, so the run never has more than `max_parallel_jobs` instances at once."""
        if self.layout != "jobs":
            return [(self.max_training_jobs, self.max_parallel_jobs)]
        shares = split_budget(self.max_training_jobs, len(self.optimizers))
        parallel = split_budget(self.max_parallel_jobs, len(self.optimizers))
        return [(share, min(p, share)) for share, p in zip(shares, parallel, strict=True)]

    def tuning_job_runtime(self, max_jobs: int, max_parallel: int) -> int:
        """A tuning job's MaxRuntimeInSeconds: every wave of jobs may run to its limit (spot: its wait)."""
        per_job = self.spot_max_wait_seconds if self.use_spot else self.max_runtime_seconds
        waves = math.ceil(max_jobs / max_parallel)
        return max(limits.TUNING_JOB_MIN_RUNTIME.value, min(limits.TUNING_JOB_RUNTIME.value, waves * per_job))

    @property
    def spot_max_wait_seconds(self) -> int:
        """MaxWaitTimeInSeconds for spot: as configured, else twice the runtime."""
        return self.max_wait_seconds or 2 * self.max_runtime_seconds

    @property
    def image_size(self) -> tuple[int, int, int]:
        c, h, w = (int(v) for v in self.image_shape.split(","))
        return c, h, w

    def range_for(self, name: str) -> NumericRange:
        for r in self.ranges:
            if r.name == name:
                return r
        raise KeyError(name)

    def worst_case_tuning_seconds(self) -> int:
        """Time the run's tuning can take: its tuning jobs run side by side, each to its MaxRuntimeInSeconds."""
        return max(self.tuning_job_runtime(jobs, parallel) for jobs, parallel in self.tuning_job_budgets())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the inverse of from_mapping."""
        out = dataclasses.asdict(self)
        out["optimizers"] = list(self.optimizers)
        out["allowed_instance_types"] = list(self.allowed_instance_types)
        out["ranges"] = {r.name: {"min": r.min_value, "max": r.max_value, "scaling": r.scaling} for r in self.ranges}
        return out


# ---------------------------------------------------------------------- per-key parsers


def split_budget(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal shares (the first ones get the remainder)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _loosens(key: str, value: Any, deployment: TuningSettings) -> str | None:
    """Why a manifest's value for a deployment-owned limit loosens it, or None when it does not."""
    owned = OWNERSHIP.get(key)
    if owned == ALLOW_LIST:
        return None  # checked against the allow-list by check()
    if owned != TIGHTEN:
        return None
    limit = getattr(deployment, key)
    if key == "use_spot":
        return "turns managed spot training off" if limit and not value else None
    if key == "max_wait_seconds":
        value, limit = (v if v is not None else 2 * deployment.max_runtime_seconds for v in (value, limit))
    if limit is None:
        return None  # no limit deployed: any value tightens
    if value is None:
        return f"removes the deployment's limit of {limit}"
    return f"({value}) is above the deployment's {limit}" if value > limit else None


def _sub(key: str, name: str) -> str:
    """ "...: key 'ranges'" + "learning_rate" -> "...: key 'ranges.learning_rate'"."""
    return f"{key[:-1]}.{name}'" if key.endswith("'") else f"{key}.{name}"


def _int(value: Any, key: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{key} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise SettingsError(f"{key} must be {bound}, got {value}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingsError(f"{key} must be a number, got {value!r}")
    return float(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{key} must be true or false, got {value!r}")
    return value


def _choice(value: Any, key: str, allowed: tuple[Any, ...]) -> Any:
    # Same type too: 18.0 == 18, but the algorithm would receive "18.0".
    if value not in allowed or isinstance(value, bool) or not any(type(value) is type(a) for a in allowed):
        shown = ", ".join(str(a) for a in allowed)
        raise SettingsError(f"{key} must be one of {shown}, got {value!r}")
    return value


def _instance_type(value: Any, key: str, _: TuningSettings) -> str:
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


def _instance_types(value: Any, key: str, base: TuningSettings) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SettingsError(f"{key} must be a list of GPU training instance types")
    return tuple(_instance_type(v, key, base) for v in value)


def _image_shape(value: Any, key: str, _: TuningSettings) -> str:
    parts = value.split(",") if isinstance(value, str) else []
    if len(parts) != 3 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        raise SettingsError(f"{key} must look like '3,224,224' (channels,height,width), got {value!r}")
    c, h, w = (int(p) for p in parts)
    if c not in (1, 3) or h < 8 or w < 8:
        raise SettingsError(f"{key}: channels must be 1 or 3 and sides at least 8, got {value!r}")
    return f"{c},{h},{w}"


def _optimizers(value: Any, key: str, _: TuningSettings) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SettingsError(f"{key} must be a non-empty list drawn from {', '.join(OPTIMIZERS)}")
    for v in value:
        _choice(v, key, OPTIMIZERS)
    if len(set(value)) != len(value):
        raise SettingsError(f"{key} lists an optimizer twice: {value}")
    return tuple(o for o in OPTIMIZERS if o in value)


def _ranges(value: Any, key: str, base: TuningSettings) -> tuple[NumericRange, ...]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object of hyperparameter -> {{min, max, scaling}}")
    current = {r.name: r for r in base.ranges}
    for name, spec in value.items():
        where = _sub(key, name)
        if name not in SEED_RANGES:
            raise SettingsError(f"{where}: not a tunable numeric hyperparameter. Allowed: {', '.join(SEED_RANGES)}")
        if not isinstance(spec, Mapping):
            raise SettingsError(f"{where} must be an object with min, max and/or scaling")
        unknown = sorted(set(spec) - {"min", "max", "scaling"})
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}; use min, max, scaling")
        old = current[name]
        lo = _number(spec.get("min", old.min_value), _sub(where, "min"))
        hi = _number(spec.get("max", old.max_value), _sub(where, "max"))
        scaling = _choice(spec.get("scaling", old.scaling), _sub(where, "scaling"), SCALING_TYPES)
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
    return tuple(current[n] for n in SEED_RANGES)


def _completion(value: Any, key: str, base: TuningSettings) -> Completion:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object")
    allowed = {f.name for f in dataclasses.fields(Completion)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SettingsError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    out = base.completion
    if value.get("target_accuracy") is not None:
        t = _number(value["target_accuracy"], _sub(key, "target_accuracy"))
        if not 0 < t <= 1:
            raise SettingsError(f"{_sub(key, 'target_accuracy')} must be in (0, 1], got {t}")
        out = dataclasses.replace(out, target_accuracy=t)
    if "max_jobs_not_improving" in value:  # null turns the default off
        n = value["max_jobs_not_improving"]
        n = None if n is None else _int(n, _sub(key, "max_jobs_not_improving"), 3)
        out = dataclasses.replace(out, max_jobs_not_improving=n)
    if "complete_on_convergence" in value:
        out = dataclasses.replace(
            out, complete_on_convergence=_bool(value["complete_on_convergence"], _sub(key, "complete_on_convergence"))
        )
    return out


def _approval(value: Any, key: str, base: TuningSettings) -> Approval:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{key} must be an object with mode and threshold")
    unknown = sorted(set(value) - {"mode", "threshold"})
    if unknown:
        raise SettingsError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: mode, threshold")
    mode = _choice(value.get("mode", base.approval.mode), _sub(key, "mode"), APPROVAL_MODES)
    threshold = _number(value.get("threshold", base.approval.threshold), _sub(key, "threshold"))
    if not 0 < threshold <= 1:
        raise SettingsError(f"{_sub(key, 'threshold')} must be in (0, 1], got {threshold}")
    return Approval(mode=mode, threshold=threshold)


def _optional_int(lo: int) -> Any:
    def parse(value: Any, key: str, _: TuningSettings) -> int | None:
        return None if value is None else _int(value, key, lo)

    return parse


_PARSERS: dict[str, Any] = {
    "instance_type": _instance_type,
    "volume_size_gb": lambda v, k, _: _int(v, k, 1, limits.EBS_VOLUME_GB.value),
    "max_training_jobs": lambda v, k, _: _int(v, k, 1, limits.TRAINING_JOBS_PER_TUNING_JOB.value),
    "max_parallel_jobs": lambda v, k, _: _int(v, k, 1, limits.PARALLEL_TRAINING_JOBS.value),
    "max_runtime_seconds": lambda v, k, _: _int(v, k, 120, limits.TRAINING_JOB_RUNTIME.value),
    "strategy": lambda v, k, _: _choice(v, k, STRATEGIES),
    "early_stopping": lambda v, k, _: _choice(v, k, EARLY_STOPPING),
    "use_spot": lambda v, k, _: _bool(v, k),
    "max_wait_seconds": _optional_int(120),
    "epochs": lambda v, k, _: _int(v, k, 1, 1000),
    "num_layers": lambda v, k, _: _choice(v, k, NUM_LAYERS),
    "image_shape": _image_shape,
    "use_pretrained_model": lambda v, k, _: _bool(v, k),
    "precision_dtype": lambda v, k, _: _choice(v, k, PRECISIONS),
    "layout": lambda v, k, _: _choice(v, k, LAYOUTS),
    "optimizers": _optimizers,
    "ranges": _ranges,
    "completion": _completion,
    "warm_start": lambda v, k, _: _bool(v, k),
    "approval": _approval,
    "poll_seconds": lambda v, k, _: _int(v, k, 1, 3600),
    "max_cost_usd": lambda v, k, _: None if v is None else _positive(v, k),
    "price_per_hour_usd": lambda v, k, _: None if v is None else _positive(v, k),
    "allowed_instance_types": _instance_types,
}


def _positive(value: Any, key: str) -> float:
    number = _number(value, key)
    if number <= 0:
        raise SettingsError(f"{key} must be a positive number, got {value!r}")
    return number
