"""Behaviours a user relies on, each at the value where a plausible bug would hide.

Expected values are literals worked out by hand from the rule they check (named in each test).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.stop_orphans import stop_run
from pipeline.aws.errors import BudgetExceeded, TransientAwsError, classified_aws_errors, is_transient
from pipeline.evaluation.best_job import choose_best, overall_status
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.cost import check_budget
from pipeline.tuning.request import build_tuning_requests
from tests.fakes import Fake
from tests.sample_request import DATA, DEST, client_error


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


# ---------------------------------------------------------------------- choosing the best


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


# ---------------------------------------------------------------------- requests


@pytest.mark.parametrize("layout", ["flat", "definitions", "job_per_optimizer"])
def test_network_isolation_is_on_without_a_vpc_and_traffic_encryption_only_with_one(layout: str) -> None:
    settings = dataclasses.replace(TuningSettings(), layout=layout, max_parallel_jobs=4)
    for request in build_tuning_requests("r", settings, DATA, DEST):
        definitions = request.get("TrainingJobDefinitions") or [request["TrainingJobDefinition"]]
        for definition in definitions:
            assert definition["EnableNetworkIsolation"] is True
            assert definition["EnableInterContainerTrafficEncryption"] is False
            assert "VpcConfig" not in definition


@pytest.mark.parametrize(
    ("jobs", "parallel", "spot", "expected"),
    [
        (20, 2, False, 10 * 3600),  # 10 waves of one-hour jobs
        (21, 2, False, 11 * 3600),  # the odd job is an eleventh wave
        (20, 2, True, 10 * 7200),  # spot: each wave may wait twice the runtime
        (1, 1, False, 3600),
    ],
)
def test_the_tuning_job_may_run_every_wave_to_its_limit(jobs: int, parallel: int, spot: bool, expected: int) -> None:
    settings = dataclasses.replace(
        TuningSettings(),
        layout="flat",
        max_training_jobs=jobs,
        max_parallel_jobs=parallel,
        max_runtime_seconds=3600,
        use_spot=spot,
    )
    (request,) = build_tuning_requests("r", settings, DATA, DEST)
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] == expected


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_an_unknown_server_error_is_transient(status: int) -> None:
    assert is_transient(client_error("SomethingNobodyListed", status))
    with pytest.raises(TransientAwsError), classified_aws_errors():
        raise client_error("SomethingNobodyListed", status)


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "ResourceNotFound"])
def test_a_client_error_is_not_transient(code: str) -> None:
    assert not is_transient(client_error(code, 400))
    with pytest.raises(ClientError), classified_aws_errors():
        raise client_error(code, 400)


# ---------------------------------------------------------------------- cost cap


def test_a_worst_case_exactly_at_the_cap_is_allowed_and_a_cent_below_is_not() -> None:
    # 10 jobs x 1 h x $2.00/h = $20.00 worst case.
    base = {"price_per_hour_usd": 2.0, "max_training_jobs": 10, "max_parallel_jobs": 2, "max_runtime_seconds": 3600}
    at_cap = TuningSettings.from_mapping({**base, "max_cost_usd": 20.0}, where="t")
    assert check_budget(at_cap, "us-east-1", "m").worst_case_usd == 20.0
    below = TuningSettings.from_mapping({**base, "max_cost_usd": 19.99}, where="t")
    with pytest.raises(BudgetExceeded, match=r"\$20.00 .* above max_cost_usd \$19.99"):
        check_budget(below, "us-east-1", "m")


# ---------------------------------------------------------------------- cleanup


FIRST = "arn:aws:states:us-east-1:123456789012:execution:Workflow:first"
DUPLICATE = "arn:aws:states:us-east-1:123456789012:execution:Workflow:duplicate"
OTHER_RUN = "arn:aws:states:us-east-1:123456789012:execution:Workflow:flowers"


class TuningJobsOfTheAccount(Fake):
    """ListHyperParameterTuningJobs (NameContains, StatusEquals), ListTags and Stop, as SageMaker answers."""

    def __init__(self, jobs: dict[str, tuple[str, str]]) -> None:
        self.jobs = jobs  # name -> (status, execution tag)
        self.stopped: list[str] = []

    @staticmethod
    def arn(name: str) -> str:
        return f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}"

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_hyper_parameter_tuning_jobs"
        return self

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        assert params.get("NameContains"), "an account holds thousands of jobs: list the run's only"
        names = [
            n
            for n, (s, _) in self.jobs.items()
            if params.get("NameContains", "") in n and params.get("StatusEquals", s) == s
        ]
        summaries = [{"HyperParameterTuningJobName": n, "HyperParameterTuningJobArn": self.arn(n)} for n in names]
        return [{"HyperParameterTuningJobSummaries": summaries}]

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        (name,) = [n for n in self.jobs if self.arn(n) == ResourceArn]
        return {"Tags": [{"Key": "tuning-pipeline:execution", "Value": self.jobs[name][1]}]}

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        self.stopped.append(HyperParameterTuningJobName)
        return {}


def account_with_two_runs() -> TuningJobsOfTheAccount:
    return TuningJobsOfTheAccount(
        {
            "digits-0123456789-sgd": ("InProgress", FIRST),
            "digits-0123456789-adam": ("InProgress", FIRST),
            "digits-0123456789-rms": ("Completed", FIRST),
            "flowers-9876543210": ("InProgress", OTHER_RUN),  # another run, in flight
            "xdigits-0123456789": ("InProgress", OTHER_RUN),  # contains the run id, is not the run
        }
    )


def test_cleanup_stops_the_ended_executions_jobs_and_leaves_a_concurrent_run_running() -> None:
    account = account_with_two_runs()
    assert stop_run("digits-0123456789", account, FIRST) == ["digits-0123456789-sgd", "digits-0123456789-adam"]
    assert account.stopped == ["digits-0123456789-sgd", "digits-0123456789-adam"]


def test_cleanup_stops_a_flat_runs_one_job_named_as_the_run() -> None:
    account = TuningJobsOfTheAccount(
        {"digits-0123456789": ("InProgress", FIRST), "digits-01234567890": ("InProgress", FIRST)}
    )  # the second contains the run id and is not the run's (another run id, another upload)
    assert stop_run("digits-0123456789", account, FIRST) == ["digits-0123456789"]


def test_cleanup_of_a_failed_duplicate_delivery_stops_nothing_the_first_execution_owns() -> None:
    account = account_with_two_runs()
    assert stop_run("digits-0123456789", account, DUPLICATE) == []
    assert account.stopped == []
