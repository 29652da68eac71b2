"""The cleanup after an execution ends: whose jobs it stops, and which run it frees."""

from __future__ import annotations

import json
from typing import Any

from handlers.stop_orphans import run_of_execution, stop_run
from pipeline.tuning.naming import run_id
from tests.fakes import Fake

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


def test_the_run_of_an_ended_execution_comes_from_its_input() -> None:
    event = {
        "detail": {"bucket": {"name": "ds"}, "object": {"key": "datasets/digits/manifest.json", "version-id": "v7"}}
    }
    assert run_of_execution({"input": json.dumps(event)}) == run_id("ds", "digits", "v7")
    assert run_of_execution({"input": json.dumps({"detail": {}})}) is None
    assert run_of_execution({"input": "{broken"}) is None
    assert run_of_execution({}) is None
