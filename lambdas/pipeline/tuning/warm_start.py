"""Which previous tuning job a new one may warm-start from, by SageMaker's rules.

"Warm Start Tuning Restrictions" (SageMaker Developer Guide, "Run a Warm Start Hyperparameter
Tuning Job"), the ones a run of this pipeline can break (the objective never changes, and a run
names at most one parent per tuning job):

- every parent is in a terminal state: Completed, Stopped or Failed;
- "the total number of static plus tunable hyperparameters must remain the same";
- "the type of each hyperparameter (continuous, integer, categorical) must not change";
- tunable-to-static changes plus changed static values: at most 10, each value of a
  categorical counting once. The guide's example counts a changed static value as 2 changes
  ("red" to "blue"): counted so here, which can only leave out a parent SageMaker would take;
- "All training jobs launched by parent hyperparameter tuning jobs and the new hyperparameter
  tuning jobs count against the limit of training jobs for the tuning job" (API reference,
  HyperParameterTuningJobWarmStartConfig): 750 (limits.TRAINING_JOBS_PER_TUNING_JOB).
"""

from __future__ import annotations

from typing import Any

from pipeline.settings.limits import TRAINING_JOBS_PER_TUNING_JOB

TERMINAL = ("Completed", "Stopped", "Failed")
MAX_CHANGES = 10
KINDS = {
    "ContinuousParameterRanges": "continuous",
    "IntegerParameterRanges": "integer",
    "CategoricalParameterRanges": "categorical",
}


def _space(job: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """(static hyperparameters, tunable name -> (type, how many values it counts as)) of a
    CreateHyperParameterTuningJob request or a DescribeHyperParameterTuningJob answer."""
    static = {
        k: v
        for k, v in job.get("TrainingJobDefinition", {}).get("StaticHyperParameters", {}).items()
        if not k.startswith("_")  # SageMaker's own, such as _tuning_objective_metric
    }
    ranges = job["HyperParameterTuningJobConfig"].get("ParameterRanges", {})
    tunable = {
        r["Name"]: (kind, len(r.get("Values", [None]))) for key, kind in KINDS.items() for r in ranges.get(key, [])
    }
    return static, tunable


def refusal(parent: dict[str, Any], request: dict[str, Any], launched: int) -> str | None:
    """Why SageMaker would refuse `parent` (its Describe answer) for `request`, given the
    training jobs `launched` by the request's other parents; None if it would take it."""
    status = parent["HyperParameterTuningJobStatus"]
    if status not in TERMINAL:
        return f"it is {status}, not finished"
    jobs = sum(parent.get("TrainingJobStatusCounters", {}).values())
    limit = TRAINING_JOBS_PER_TUNING_JOB.value
    own = request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    if own + launched + jobs > limit:
        return f"its {jobs} training jobs and this job's {own} are more than the {limit} a tuning job may count"
    old_static, old_tunable = _space(parent)
    new_static, new_tunable = _space(request)
    if set(old_static) | set(old_tunable) != set(new_static) | set(new_tunable):
        return "the hyperparameters (static plus tunable) are not the same"
    for name in set(old_tunable) & set(new_tunable):
        if old_tunable[name][0] != new_tunable[name][0]:
            return f"'{name}' was {old_tunable[name][0]}, now {new_tunable[name][0]}"
    changes = sum(count for name, (_, count) in old_tunable.items() if name in new_static)
    changes += 2 * sum(1 for name, value in new_static.items() if old_static.get(name, value) != value)
    if changes > MAX_CHANGES:
        return f"{changes} changes from tunable to static and of static values, more than {MAX_CHANGES}"
    return None
