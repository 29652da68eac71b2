"""After any failure: stop the run's tuning jobs still running, then compose the failure notice."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from pipeline import clients
from pipeline.dataset import DATASETS_PREFIX
from pipeline.messages import failure_message
from pipeline.telemetry import SERVICE

logger = Logger(service=SERVICE)


def stop_running(job_names: list[str], sm: Any) -> list[str]:
    """Stop every listed tuning job that is still InProgress; return those stopped."""
    stopped = []
    for name in job_names:
        try:
            status = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
                "HyperParameterTuningJobStatus"
            ]
            if status == "InProgress":
                sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                stopped.append(name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
                raise
    return stopped


def uploaded_dataset(event: dict[str, Any]) -> dict[str, str] | None:
    """The dataset named by the triggering S3 event, when validation never produced a run."""
    try:
        bucket = event["detail"]["bucket"]["name"]
        key = event["detail"]["object"]["key"]
    except (KeyError, TypeError):
        return None
    name = key.removeprefix(DATASETS_PREFIX).split("/")[0] if key.startswith(DATASETS_PREFIX) else key
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return {"name": name, "uri": f"s3://{bucket}/{prefix}"}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    run = event.get("run")
    if run:
        logger.append_keys(run_id=run["run_id"])
    # Only the jobs this execution started: a failing duplicate delivery must not stop the
    # jobs the first execution of the same upload is following.
    owned = (event.get("tuning") or {}).get("started", [])
    stopped = stop_running(owned, clients.client("sagemaker")) if owned else []
    logger.error("run failed", extra={"error": event.get("error"), "stopped": stopped})
    dataset = None if run else uploaded_dataset(event)
    return failure_message(event.get("error") or {}, run, stopped, os.environ["AWS_REGION"], dataset)
