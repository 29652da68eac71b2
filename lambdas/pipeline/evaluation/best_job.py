"""Follow tuning jobs and choose the best training job across them: pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import NoSuccessfulTrainingJob

RUNNING = ("InProgress", "Stopping")


@dataclass(frozen=True)
class Best:
    tuning_job_name: str
    training_job_name: str
    accuracy: float
    hyperparameters: dict[str, str]
    definition_name: str | None


def job_summary(describe: dict[str, Any]) -> dict[str, Any]:
    """The few fields of DescribeHyperParameterTuningJob the workflow carries (payloads stay small)."""
    counters = describe.get("TrainingJobStatusCounters", {})
    return {
        "name": describe["HyperParameterTuningJobName"],
        "status": describe["HyperParameterTuningJobStatus"],
        "completed": counters.get("Completed", 0),
        "in_progress": counters.get("InProgress", 0),
        "failed": counters.get("RetryableError", 0) + counters.get("NonRetryableError", 0),
        "stopped": counters.get("Stopped", 0),
        "has_best": "BestTrainingJob" in describe,
        "failure_reason": describe.get("FailureReason", ""),
    }


def overall_status(summaries: list[dict[str, Any]]) -> str:
    """InProgress while any job runs; then Completed if any job has a best training job."""
    if any(s["status"] in RUNNING for s in summaries):
        return "InProgress"
    if any(s["has_best"] for s in summaries):
        return "Completed"
    return "Failed"


def failure_reason(summaries: list[dict[str, Any]]) -> str:
    parts = []
    for s in summaries:
        reason = s["failure_reason"] or "no training job completed"
        parts.append(
            f"{s['name']}: {s['status']} ({reason}; {s['completed']} completed, {s['failed']} failed, "
            f"{s['stopped']} stopped training jobs)"
        )
    return "; ".join(parts)


def choose_best(describes: list[dict[str, Any]]) -> Best:
    """The training job with the highest validation accuracy across the run's tuning jobs."""
    candidates = []
    for d in describes:
        best = d.get("BestTrainingJob")
        metric = (best or {}).get("FinalHyperParameterTuningJobObjectiveMetric")
        if not best or metric is None or best.get("TrainingJobStatus") != "Completed":
            continue
        candidates.append(
            Best(
                tuning_job_name=d["HyperParameterTuningJobName"],
                training_job_name=best["TrainingJobName"],
                accuracy=float(metric["Value"]),
                hyperparameters=dict(best.get("TunedHyperParameters", {})),
                definition_name=best.get("TrainingJobDefinitionName"),
            )
        )
    if not candidates:
        names = ", ".join(d["HyperParameterTuningJobName"] for d in describes)
        raise NoSuccessfulTrainingJob(
            f"no completed training job in {names}. Open the tuning job in the SageMaker console "
            "and read the FailureReason of its training jobs (often the GPU quota, or a batch size "
            "larger than the dataset)."
        )
    # Highest accuracy; max() keeps the first of equals, so ties go to the earliest tuning job.
    return max(candidates, key=lambda b: b.accuracy)


def optimizer_of(best: Best, static: dict[str, str]) -> str:
    """Which optimizer trained the best job: tuned (flat) or static (per-optimizer layouts)."""
    return best.hyperparameters.get("optimizer") or static.get("optimizer", "unknown")
