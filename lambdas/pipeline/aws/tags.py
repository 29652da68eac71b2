"""Which execution owns a tuning job: the one that created it, recorded in a tag.

EventBridge delivers an upload at least once, so two executions can work on the same run and
see the same tuning jobs. Only the execution that created a job may stop it: a duplicate that
fails must not stop the jobs the first execution is following.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import error_code

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.type_defs import TagTypeDef

RUN_TAG = "tuning-pipeline:run"
DATASET_TAG = "tuning-pipeline:dataset"
EXECUTION_TAG = "tuning-pipeline:execution"


def tags(dataset: str, run_id: str, execution: str) -> list[TagTypeDef]:
    return [
        {"Key": DATASET_TAG, "Value": dataset},
        {"Key": RUN_TAG, "Value": run_id},
        {"Key": EXECUTION_TAG, "Value": execution},
    ]


def owner(sm: Any, tuning_job_arn: str) -> str | None:
    """The execution that created the tuning job, or None when it carries no such tag."""
    listed = sm.list_tags(ResourceArn=tuning_job_arn, MaxResults=50)["Tags"]
    return next((t["Value"] for t in listed if t["Key"] == EXECUTION_TAG), None)


def owned_by(sm: Any, name: str, execution: str) -> bool:
    """Whether `execution` created the tuning job `name` (False when it does not exist)."""
    try:
        arn = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["HyperParameterTuningJobArn"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFound":
            return False
        raise
    return owner(sm, arn) == execution
