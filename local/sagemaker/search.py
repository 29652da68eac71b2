"""The search inside a local tuning job: Optuna, configured the way SageMaker documents it.

- Strategy Bayesian -> TPE, Random -> random sampling, Grid -> every combination of the
  categorical ranges, Hyperband -> TPE with Hyperband pruning over epochs.
- TrainingJobEarlyStoppingType Auto -> median stopping (a job stops when its accuracy at an
  epoch is below the median of earlier jobs at that epoch).
- Several TrainingJobDefinitions -> the definition is itself a choice; each definition's
  ranges are sampled only when it is chosen (a conditional space).
- ScalingType: Linear/Auto -> uniform, Logarithmic -> log-uniform, ReverseLogarithmic ->
  log-uniform on 1 - x.
- WarmStartConfig -> the parents' finished training jobs (hyperparameters and final objective)
  are told to the new search before it asks anything, as SageMaker documents warm start: "the
  results of previous tuning jobs are used to inform which combinations of hyperparameters to
  search over". A parent's job outside the new ranges is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

DEFINITION_PARAM = "__definition"


@dataclass(frozen=True)
class Definition:
    name: str | None
    static: dict[str, str]
    ranges: dict[str, Any]


def definitions_of(request: dict[str, Any]) -> list[Definition]:
    config = request["HyperParameterTuningJobConfig"]
    if "TrainingJobDefinitions" in request:
        return [
            Definition(d["DefinitionName"], dict(d.get("StaticHyperParameters", {})), d.get("HyperParameterRanges", {}))
            for d in request["TrainingJobDefinitions"]
        ]
    d = request["TrainingJobDefinition"]
    return [Definition(None, dict(d.get("StaticHyperParameters", {})), config.get("ParameterRanges", {}))]


def grid_choices(definitions: list[Definition]) -> dict[str, list[str]] | None:
    """Grid works on categorical ranges only; None when any numeric range is present."""
    choices: dict[str, list[str]] = {}
    for d in definitions:
        if d.ranges.get("ContinuousParameterRanges") or d.ranges.get("IntegerParameterRanges"):
            return None
        for r in d.ranges.get("CategoricalParameterRanges", []):
            choices[r["Name"]] = list(r["Values"])
    return choices


@dataclass(frozen=True)
class Observation:
    """A finished training job of a parent tuning job: what a warm start learns from."""

    definition: str | None
    tuned: dict[str, str]
    objective: float


def _distribution(r: dict[str, Any], kind: str) -> tuple[Any, Any]:
    """The Optuna distribution a range is searched in (by `sample`, and for a warm start's
    parents), and how one of its value strings maps into it."""
    if kind == "Categorical":
        return optuna.distributions.CategoricalDistribution(list(r["Values"])), str
    lo, hi = float(r["MinValue"]), float(r["MaxValue"])
    log = r.get("ScalingType", "Auto") == "Logarithmic"
    if kind == "Integer":
        return optuna.distributions.IntDistribution(int(lo), int(hi), log=log), lambda v: int(float(v))
    if r.get("ScalingType") == "ReverseLogarithmic":
        return optuna.distributions.FloatDistribution(1.0 - hi, 1.0 - lo, log=True), lambda v: 1.0 - float(v)
    return optuna.distributions.FloatDistribution(lo, hi, log=log), float


KINDS = ("Categorical", "Continuous", "Integer")


def _observed(definition: Definition, tuned: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A parent job's values as this definition's Optuna parameters; None if the space cannot hold them."""
    prefix = f"{definition.name}:" if definition.name else ""
    params: dict[str, Any] = {}
    distributions: dict[str, Any] = {}
    for kind in KINDS:
        for r in definition.ranges.get(f"{kind}ParameterRanges", []):
            distribution, parse = _distribution(r, kind)
            try:
                value = parse(tuned[r["Name"]])
            except (KeyError, ValueError):
                return None
            inside = (
                value in distribution.choices
                if kind == "Categorical"
                else distribution.low <= value <= distribution.high
            )
            if not inside:
                return None
            params[prefix + r["Name"]], distributions[prefix + r["Name"]] = value, distribution
    return params, distributions


def warm_start(study: optuna.Study, definitions: list[Definition], parents: list[Observation]) -> int:
    """Tell the study the parents' jobs its space can hold; returns how many it was told."""
    told = 0
    for o in parents:
        if len(definitions) == 1:
            definition: Definition | None = definitions[0]
        else:
            definition = next((d for d in definitions if d.name == o.definition), None)
        observed = _observed(definition, o.tuned) if definition else None
        if observed is None:
            continue
        params, distributions = observed
        if len(definitions) > 1:
            params[DEFINITION_PARAM] = o.definition
            distributions[DEFINITION_PARAM] = optuna.distributions.CategoricalDistribution(
                [d.name for d in definitions]
            )
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=o.objective))
        told += 1
    return told


def make_study(request: dict[str, Any], seed: int) -> optuna.Study:
    config = request["HyperParameterTuningJobConfig"]
    strategy = config["Strategy"]
    sampler: optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if strategy == "Random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif strategy == "Grid":
        choices = grid_choices(definitions_of(request)) or {}
        sampler = optuna.samplers.GridSampler(choices, seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=min(5, config["ResourceLimits"]["MaxNumberOfTrainingJobs"] // 2 or 1)
        )
    if strategy == "Hyperband":
        hb = config.get("StrategyConfig", {}).get("HyperbandStrategyConfig", {})
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=hb.get("MinResource", 1), max_resource=hb.get("MaxResource", "auto")
        )
    elif config.get("TrainingJobEarlyStoppingType") == "Auto":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def _suggest(trial: optuna.Trial, key: str, r: dict[str, Any], kind: str) -> str:
    """Draw one hyperparameter from its range's distribution, as the string SageMaker passes."""
    d, _ = _distribution(r, kind)
    if kind == "Categorical":
        return str(trial.suggest_categorical(key, d.choices))
    if kind == "Integer":
        return str(trial.suggest_int(key, d.low, d.high, log=d.log))
    value = trial.suggest_float(key, d.low, d.high, log=d.log)
    # ReverseLogarithmic, dense near 1: the distribution is of 1 - x.
    return repr(1.0 - value if r.get("ScalingType") == "ReverseLogarithmic" else value)


def sample(trial: optuna.Trial, definitions: list[Definition]) -> tuple[Definition, dict[str, str]]:
    """Choose a definition, then its tuned hyperparameters (as the strings SageMaker passes)."""
    if len(definitions) > 1:
        name = trial.suggest_categorical(DEFINITION_PARAM, [d.name for d in definitions])
        definition = next(d for d in definitions if d.name == name)
    else:
        definition = definitions[0]
    prefix = f"{definition.name}:" if definition.name else ""
    tuned: dict[str, str] = {}
    for kind in KINDS:
        for r in definition.ranges.get(f"{kind}ParameterRanges", []):
            tuned[r["Name"]] = _suggest(trial, prefix + r["Name"], r, kind)
    return definition, tuned


def grid_size(request: dict[str, Any]) -> int:
    choices = grid_choices(definitions_of(request)) or {}
    return math.prod(len(v) for v in choices.values()) if choices else 0
