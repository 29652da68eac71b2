"""Tuning settings: one typed, validated schema for `cdk.json` context and manifest overrides.

The deployment's defaults (from `cdk.json`) and a dataset manifest's `tuning` block go through
the same `TuningSettings.from_mapping`, so a value rejected at synth is rejected in a manifest
with the same words. A manifest goes through `from_manifest` on top: the people who upload
datasets are not the people who deploy the stack, so a manifest may set what is the dataset's
business and may only tighten what the deployment owns (`OWNERSHIP`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.aws.errors import SettingsError
from pipeline.settings import limits
from pipeline.settings.checks import choose
from pipeline.settings.keys import KEYS, Approval, Completion
from pipeline.settings.search_space import DEFAULT_PRESET, OPTIMIZERS, PRESETS, NumericRange
from pipeline.settings.trust import DEPLOYMENT, OWNERSHIP, loosens


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
    # Ranges of one optimizer's definition (layouts definitions and job_per_optimizer), over `ranges`.
    optimizer_ranges: tuple[tuple[str, tuple[NumericRange, ...]], ...] = ()
    completion: Completion = field(default_factory=Completion)
    warm_start: str = "off"
    approval: Approval = field(default_factory=Approval)
    poll_seconds: int = 60
    # Instance types a manifest may choose; empty means only `instance_type`.
    allowed_instance_types: tuple[str, ...] = ()
    # Cost guardrail: refuse runs whose worst case is above this (None: no cap).
    max_cost_usd: float | None = None
    # Override the price table (data/training-prices.json) for this instance type and region.
    price_per_hour_usd: float | None = None
    # The test split's batch transform (deployment settings): its instance, and the longest it may run.
    evaluation_instance_type: str = "ml.m5.xlarge"
    evaluation_max_seconds: int = 3600
    # An image of one split that is a byte-for-byte copy of another split's: refused by default.
    copies_across_splits: str = "refuse"

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
            preset = choose(data["preset"], f"{where}: key 'preset'", tuple(PRESETS))
            base = dataclasses.replace(base, preset=preset, ranges=tuple(PRESETS[preset].values()), optimizer_ranges=())
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in ("preset", "optimizer_ranges"):
                values[name] = KEYS[name].parse(value, f"{where}: key '{name}'", base)
        if "optimizer_ranges" in data:  # over this mapping's own `ranges`, whatever the keys' order
            over = dataclasses.replace(base, **values)
            values["optimizer_ranges"] = KEYS["optimizer_ranges"].parse(
                data["optimizer_ranges"], f"{where}: key 'optimizer_ranges'", over
            )
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
            problem = loosens(key, getattr(settings, key), deployment)
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
        self._check_optimizer_ranges(where)
        if self.layout == "job_per_optimizer" and self.max_parallel_jobs < len(self.optimizers):
            raise SettingsError(
                f"{where}: key 'max_parallel_jobs' ({self.max_parallel_jobs}) must be at least the number of "
                f"optimizers ({len(self.optimizers)}) with layout 'job_per_optimizer', which runs one tuning job per optimizer "
                "side by side, each with at least one instance. Use layout 'definitions', fewer optimizers, or "
                "raise max_parallel_jobs (and the GPU quota) in cdk.json."
            )
        if self.layout == "definitions":
            if self.early_stopping != "Off":
                raise SettingsError(
                    f"{where}: key 'early_stopping' must be 'Off' with layout 'definitions': "
                    "SageMaker does not allow TrainingJobEarlyStoppingType=Auto with "
                    "TrainingJobDefinitions. Use layout 'job_per_optimizer' to keep early stopping."
                )
            if self.warm_start == "previous":
                raise SettingsError(
                    f"{where}: key 'warm_start' must be 'auto' or 'off' with layout 'definitions': "
                    "SageMaker does not allow WarmStartConfig with TrainingJobDefinitions. "
                    "Use layout 'flat' or 'job_per_optimizer' to warm start."
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

    def _check_optimizer_ranges(self, where: str) -> None:
        own = [optimizer for optimizer, _ in self.optimizer_ranges]
        if own and self.layout == "flat":
            raise SettingsError(
                f"{where}: key 'optimizer_ranges' needs a definition per optimizer, and layout 'flat' has one for "
                "all of them. Use layout 'definitions' (the default) or 'job_per_optimizer', or move the ranges to "
                "'ranges'."
            )
        untuned = [o for o in own if o not in self.optimizers]
        if untuned:
            raise SettingsError(
                f"{where}: key 'optimizer_ranges' sets ranges for {', '.join(untuned)}, which this run does not "
                f"tune (optimizers: {', '.join(self.optimizers)}). Remove them or add them to 'optimizers'."
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

        Layout `job_per_optimizer` splits both the total and the parallel jobs between the optimizers' tuning
        jobs, so the run never has more than `max_parallel_jobs` instances at once."""
        if self.layout != "job_per_optimizer":
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

    def range_for(self, name: str, optimizer: str | None = None) -> NumericRange:
        """The range of `name`: the optimizer's own when it has one, else the run's."""
        own = dict(self.optimizer_ranges).get(optimizer or "", ())
        for r in (*own, *self.ranges):
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
        out["optimizer_ranges"] = {
            optimizer: {r.name: {"min": r.min_value, "max": r.max_value, "scaling": r.scaling} for r in ranges}
            for optimizer, ranges in self.optimizer_ranges
        }
        return out


# ---------------------------------------------------------------------- budgets


def split_budget(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` near-equal shares (the first ones get the remainder)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
