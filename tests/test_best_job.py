"""Choosing the best training job, and the status summary PollTuning reports."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.evaluation.best_job import Best, choose_best, job_summary, optimizer_of, overall_status


def described(name: str, accuracy: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"HyperParameterTuningJobName": name, "HyperParameterTuningJobStatus": "Completed"}
    if accuracy is not None:
        out["BestTrainingJob"] = {
            "TrainingJobName": f"{name}-001-abcdef12",
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {"learning_rate": "0.01"},
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:accuracy", "Value": accuracy},
        }
    return out


@pytest.mark.parametrize(
    ("accuracies", "winner"),
    [((0.71, 0.93, 0.85), "r-adam"), ((0.93, 0.71, 0.85), "r-sgd"), ((0.71, 0.85, 0.93), "r-rms")],
)
def test_the_highest_accuracy_wins_wherever_its_tuning_job_stands(accuracies: tuple[float, ...], winner: str) -> None:
    names = ("r-sgd", "r-adam", "r-rms")
    best = choose_best([described(n, a) for n, a in zip(names, accuracies, strict=True)])
    assert (best.tuning_job_name, best.accuracy) == (winner, 0.93)


def test_a_tuning_job_without_a_best_is_skipped_not_fatal() -> None:
    best = choose_best([described("r-sgd", None), described("r-adam", 0.61), described("r-nag", 0.6)])
    assert best.tuning_job_name == "r-adam"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("Completed", "Stopping"), "InProgress"),  # a job still stopping may yet report its best
        (("InProgress", "Completed"), "InProgress"),
        (("Completed", "Stopped"), "Completed"),
    ],
)
def test_a_run_is_in_progress_while_any_job_runs_or_stops(statuses: tuple[str, str], expected: str) -> None:
    summaries = [{"status": s, "has_best": True} for s in statuses]
    assert overall_status(summaries) == expected


def test_a_status_summary_counts_failures_of_both_kinds() -> None:
    describe = {
        "HyperParameterTuningJobName": "r",
        "HyperParameterTuningJobStatus": "InProgress",
        "TrainingJobStatusCounters": {
            "Completed": 3,
            "InProgress": 2,
            "RetryableError": 1,
            "NonRetryableError": 4,
            "Stopped": 5,
        },
        "FailureReason": "why",
        "BestTrainingJob": {},
    }
    assert job_summary(describe) == {
        "name": "r",
        "status": "InProgress",
        "completed": 3,
        "in_progress": 2,
        "failed": 5,
        "stopped": 5,
        "has_best": True,
        "failure_reason": "why",
    }
    bare = job_summary({"HyperParameterTuningJobName": "r", "HyperParameterTuningJobStatus": "Completed"})
    assert bare == {
        "name": "r",
        "status": "Completed",
        "completed": 0,
        "in_progress": 0,
        "failed": 0,
        "stopped": 0,
        "has_best": False,
        "failure_reason": "",
    }


def test_the_optimizer_of_the_best_job_is_tuned_or_static() -> None:
    flat = Best("t", "j", 0.9, {"optimizer": "adam"}, None)
    assert optimizer_of(flat, {"optimizer": "sgd"}) == "adam"
    per_optimizer = Best("t", "j", 0.9, {}, "nag")
    assert optimizer_of(per_optimizer, {"optimizer": "nag"}) == "nag"
    assert optimizer_of(per_optimizer, {}) == "unknown"


def test_only_a_completed_best_job_with_a_metric_counts_and_its_definition_is_kept() -> None:
    from pipeline.evaluation.best_job import choose_best

    def described(name: str, status: str, metric: float | None, **extra: Any) -> dict[str, Any]:
        best: dict[str, Any] = {"TrainingJobName": f"{name}-1", "TrainingJobStatus": status, **extra}
        if metric is not None:
            best["FinalHyperParameterTuningJobObjectiveMetric"] = {"Value": metric}
        return {"HyperParameterTuningJobName": name, "BestTrainingJob": best}

    best = choose_best(
        [
            described("stopped", "Stopped", 0.99),  # the highest, but not Completed
            described("nometric", "Completed", None),
            described("kept", "Completed", 0.8, TrainingJobDefinitionName="adam"),
        ]
    )
    assert (best.tuning_job_name, best.accuracy, best.definition_name, best.hyperparameters) == (
        "kept",
        0.8,
        "adam",
        {},
    )
