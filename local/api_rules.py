"""Cross-field rules of CreateHyperParameterTuningJob that the API model's shapes cannot express.

Each rule names the page it comes from. These are the rules SageMaker documents and we
transcribed; a request that passes them and the shape checks can still be refused for reasons
nobody documented (quotas, images, roles), which no offline check can know.

Sources:
- API: SageMaker API reference, CreateHyperParameterTuningJob, HyperParameterTuningJobConfig,
  HyperParameterTrainingJobDefinition, ContinuousParameterRange, IntegerParameterRange,
  StoppingCondition, HyperParameterTuningJobWarmStartConfig.
- GUIDE: SageMaker developer guide, "Define Hyperparameter Ranges" (scaling types),
  "Tune multiple algorithms" (TrainingJobDefinitions), "Stop Training Jobs Early",
  "Managed Spot Training".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

Rule = Callable[[dict[str, Any]], Iterator[str]]
MAX_TUNABLE = 30  # GUIDE "Define Hyperparameter Ranges": at most 30 tunable hyperparameters
MAX_HYPERPARAMETERS = 100  # API HyperParameterTrainingJobDefinition.StaticHyperParameters: 100 in all


def _definitions(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if "TrainingJobDefinition" in request:
        return [("TrainingJobDefinition", request["TrainingJobDefinition"])]
    return [(f"TrainingJobDefinitions[{i}]", d) for i, d in enumerate(request.get("TrainingJobDefinitions", []))]


def _ranges(request: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    return definition.get("HyperParameterRanges") or request.get("HyperParameterTuningJobConfig", {}).get(
        "ParameterRanges", {}
    )


def one_kind_of_definition(request: dict[str, Any]) -> Iterator[str]:
    """API: exactly one of TrainingJobDefinition and TrainingJobDefinitions."""
    has = [k for k in ("TrainingJobDefinition", "TrainingJobDefinitions") if k in request]
    if len(has) != 1:
        yield f"give exactly one of TrainingJobDefinition and TrainingJobDefinitions, got {has or 'neither'}"


def definitions_stand_alone(request: dict[str, Any]) -> Iterator[str]:
    """GUIDE "Tune multiple algorithms": with TrainingJobDefinitions each definition carries its own
    DefinitionName, TuningObjective and ranges; no early stopping Auto and no warm start."""
    config = request.get("HyperParameterTuningJobConfig", {})
    if "TrainingJobDefinitions" not in request:
        if "HyperParameterTuningJobObjective" not in config:
            yield "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective is required with TrainingJobDefinition"
        return
    if config.get("TrainingJobEarlyStoppingType") == "Auto":
        yield "TrainingJobEarlyStoppingType 'Auto' is not supported with TrainingJobDefinitions"
    if "WarmStartConfig" in request:
        yield "WarmStartConfig is not supported with TrainingJobDefinitions"
    if "ParameterRanges" in config or "HyperParameterTuningJobObjective" in config:
        yield "with TrainingJobDefinitions, ranges and objective belong in each definition, not in the config"
    names = [d.get("DefinitionName") for d in request["TrainingJobDefinitions"]]
    for i, d in enumerate(request["TrainingJobDefinitions"]):
        for key in ("DefinitionName", "TuningObjective", "HyperParameterRanges"):
            if key not in d:
                yield f"TrainingJobDefinitions[{i}].{key} is required when there are several definitions"
    if len(set(names)) != len(names):
        yield f"DefinitionName values must be unique, got {names}"


def numeric_bounds(request: dict[str, Any]) -> Iterator[str]:
    """API ContinuousParameterRange/IntegerParameterRange; GUIDE "Define Hyperparameter Ranges":
    bounds are numbers as strings, min <= max, integers for Integer ranges; Logarithmic needs
    values > 0; ReverseLogarithmic is for Continuous ranges within 0 <= x < 1."""
    for where, definition in _definitions(request):
        ranges = _ranges(request, definition)
        for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
            for r in ranges.get(kind, []):
                label = f"{where} {kind} {r.get('Name')!r}"
                try:
                    low, high = float(r["MinValue"]), float(r["MaxValue"])
                except (KeyError, TypeError, ValueError):
                    yield f"{label}: MinValue and MaxValue must be numbers, got {r.get('MinValue')!r}, {r.get('MaxValue')!r}"
                    continue
                if not (math.isfinite(low) and math.isfinite(high)):
                    yield f"{label}: bounds must be finite"
                    continue
                if low > high:
                    yield f"{label}: MinValue {r['MinValue']} is greater than MaxValue {r['MaxValue']}"
                if kind == "IntegerParameterRanges" and not (low.is_integer() and high.is_integer()):
                    yield f"{label}: Integer ranges need whole-number bounds"
                scaling = r.get("ScalingType", "Auto")
                if scaling == "Logarithmic" and low <= 0:
                    yield f"{label}: Logarithmic scaling needs values greater than 0 (MinValue {r['MinValue']})"
                if scaling == "ReverseLogarithmic":
                    if kind != "ContinuousParameterRanges":
                        yield f"{label}: ReverseLogarithmic scaling is only for Continuous ranges"
                    elif not (0 <= low and high < 1):
                        yield f"{label}: ReverseLogarithmic scaling needs 0 <= values < 1"


def tuned_or_static(request: dict[str, Any]) -> Iterator[str]:
    """API HyperParameterTrainingJobDefinition: a hyperparameter is either static or tuned; at most
    30 tuned and 100 in all."""
    for where, definition in _definitions(request):
        ranges = _ranges(request, definition)
        tuned = [r.get("Name") for kind in ranges.values() if isinstance(kind, list) for r in kind]
        static = set(definition.get("StaticHyperParameters", {}))
        both = sorted(static & set(tuned))
        if both:
            yield f"{where}: {', '.join(both)} both static and tuned"
        if len(set(tuned)) != len(tuned):
            yield f"{where}: a hyperparameter is given more than one range: {sorted(tuned)}"
        if len(tuned) > MAX_TUNABLE:
            yield f"{where}: {len(tuned)} tuned hyperparameters, more than {MAX_TUNABLE}"
        if len(tuned) + len(static) > MAX_HYPERPARAMETERS:
            yield f"{where}: {len(tuned) + len(static)} hyperparameters in all, more than {MAX_HYPERPARAMETERS}"


def spot_waits_at_least_the_runtime(request: dict[str, Any]) -> Iterator[str]:
    """GUIDE "Managed Spot Training"; API StoppingCondition: MaxWaitTimeInSeconds is required with
    spot and must be >= MaxRuntimeInSeconds."""
    for where, definition in _definitions(request):
        stopping = definition.get("StoppingCondition", {})
        wait, runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds")
        spot = definition.get("EnableManagedSpotTraining", False)
        if spot and wait is None:
            yield f"{where}: EnableManagedSpotTraining needs StoppingCondition.MaxWaitTimeInSeconds"
        if wait is not None and runtime is not None and wait < runtime:
            yield f"{where}: MaxWaitTimeInSeconds {wait} is less than MaxRuntimeInSeconds {runtime}"


def strategy_fits(request: dict[str, Any]) -> Iterator[str]:
    """GUIDE "Hyperband" / API HyperParameterTuningJobConfig: Hyperband needs early stopping Off;
    Grid searches categorical ranges only."""
    config = request.get("HyperParameterTuningJobConfig", {})
    strategy = config.get("Strategy")
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        yield "Strategy 'Hyperband' requires TrainingJobEarlyStoppingType 'Off'"
    if strategy != "Hyperband" and "StrategyConfig" in config:
        yield "StrategyConfig is only for Strategy 'Hyperband'"
    if strategy == "Grid":
        for where, definition in _definitions(request):
            ranges = _ranges(request, definition)
            if ranges.get("ContinuousParameterRanges") or ranges.get("IntegerParameterRanges"):
                yield f"{where}: Strategy 'Grid' accepts categorical ranges only"


def parallel_within_total(request: dict[str, Any]) -> Iterator[str]:
    """API ResourceLimits: MaxParallelTrainingJobs cannot exceed MaxNumberOfTrainingJobs."""
    limits = request.get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {})
    total, parallel = limits.get("MaxNumberOfTrainingJobs"), limits.get("MaxParallelTrainingJobs")
    if total is not None and parallel is not None and parallel > total:
        yield f"MaxParallelTrainingJobs {parallel} is greater than MaxNumberOfTrainingJobs {total}"


def warm_start_parents(request: dict[str, Any]) -> Iterator[str]:
    """API HyperParameterTuningJobWarmStartConfig: 1..5 distinct parents, not the job itself."""
    warm = request.get("WarmStartConfig")
    if not warm:
        return
    parents = [p.get("HyperParameterTuningJobName") for p in warm.get("ParentHyperParameterTuningJobs", [])]
    if request.get("HyperParameterTuningJobName") in parents:
        yield "a tuning job cannot warm start from itself"
    if len(set(parents)) != len(parents):
        yield f"warm start parents must be distinct, got {parents}"


RULES: dict[str, tuple[Rule, ...]] = {
    "CreateHyperParameterTuningJob": (
        one_kind_of_definition,
        definitions_stand_alone,
        numeric_bounds,
        tuned_or_static,
        spot_waits_at_least_the_runtime,
        strategy_fits,
        parallel_within_total,
        warm_start_parents,
    )
}


def semantic_errors(operation: str, params: dict[str, Any]) -> list[str]:
    """Every documented cross-field rule of `operation` that `params` breaks."""
    return [f"{operation}: {problem}" for rule in RULES.get(operation, ()) for problem in rule(params)]
