"""Which execution owns a tuning job: the tag it carries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.handle_failure import stop_running
from pipeline.aws.tags import owned_by, owner
from tests.fakes import Fake
from tests.sample_request import client_error

JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/"


class Jobs(Fake):
    """DescribeHyperParameterTuningJob, ListTags and Stop over a few jobs."""

    def __init__(self, jobs: dict[str, tuple[str, str | None]], fail: str | None = None) -> None:
        self.jobs, self.fail = jobs, fail
        self.stopped: list[str] = []

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        if self.fail:
            raise client_error(self.fail)
        if HyperParameterTuningJobName not in self.jobs:
            raise client_error("ResourceNotFound")
        return {
            "HyperParameterTuningJobArn": f"{JOB_ARN}{HyperParameterTuningJobName}",
            "HyperParameterTuningJobStatus": self.jobs[HyperParameterTuningJobName][0],
        }

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        execution = self.jobs[ResourceArn.removeprefix(JOB_ARN)][1]
        tags = [{"Key": "tuning-pipeline:run", "Value": "r"}]
        return {"Tags": tags + ([{"Key": "tuning-pipeline:execution", "Value": execution}] if execution else [])}

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        self.stopped.append(HyperParameterTuningJobName)
        return {}


def test_a_job_belongs_to_the_execution_in_its_tag_and_to_no_one_without_it() -> None:
    sm = Jobs({"a": ("InProgress", "exec-1"), "b": ("InProgress", None)})
    assert owned_by(sm, "a", "exec-1") is True
    assert owned_by(sm, "a", "exec-2") is False
    assert owned_by(sm, "b", "exec-1") is False
    assert owner(sm, f"{JOB_ARN}b") is None
    assert owned_by(sm, "missing", "exec-1") is False
    with pytest.raises(ClientError):
        owned_by(Jobs({}, fail="AccessDeniedException"), "a", "exec-1")


def test_the_failure_path_stops_running_jobs_skips_vanished_ones_and_raises_the_rest() -> None:
    sm = Jobs({"a": ("InProgress", "e"), "b": ("Completed", "e"), "c": ("Stopping", "e")})
    assert stop_running(["a", "missing", "b", "c"], sm) == ["a"]
    assert sm.stopped == ["a"]
    with pytest.raises(ClientError):
        stop_running(["a"], Jobs({}, fail="AccessDeniedException"))
