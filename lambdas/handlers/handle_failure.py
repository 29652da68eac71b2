"""After any failure: stop the run's tuning jobs still running, then compose the failure notice."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from pipeline.aws import clients, s3_layout
from pipeline.aws.errors import error_code
from pipeline.aws.observe import logger, tracer
from pipeline.contract import DatasetRef, Evaluation, Tuning
from pipeline.messages import failure_message


def stop_running(job_names: tuple[str, ...], sm: Any) -> list[str]:
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
            if error_code(exc) != "ResourceNotFound":
                raise
    return stopped


def stop_evaluation(evaluation: dict[str, Any] | None, sm: Any) -> list[str]:
    """Stop the run's test-split transform when this execution started it and it still runs."""
    if not evaluation or not Evaluation(**evaluation).owned:
        return []
    started = Evaluation(**evaluation)
    stopped: list[str] = []
    try:
        if sm.describe_transform_job(TransformJobName=started.transform_job_name)["TransformJobStatus"] == "InProgress":
            sm.stop_transform_job(TransformJobName=started.transform_job_name)
            stopped.append(started.transform_job_name)
        sm.delete_model(ModelName=started.model_name)
    except ClientError as exc:
        if error_code(exc) not in ("ResourceNotFound", "ValidationException"):
            raise
    return stopped


def uploaded_dataset(event: dict[str, Any]) -> tuple[str, str]:
    """(name, uri) of what the workflow worked on: the run's dataset, or, when validation never
    produced a run, what the triggering S3 event names."""
    if event.get("run"):
        ref = DatasetRef.from_dict(event["run"]["dataset"])
        return ref.name, ref.uri
    try:
        bucket = event["detail"]["bucket"]["name"]
        key = event["detail"]["object"]["key"]
    except (KeyError, TypeError):
        return "dataset", "(not a dataset upload)"
    datasets = s3_layout.DATASETS
    name = key.removeprefix(datasets).split("/")[0] if key.startswith(datasets) else key
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return name, f"s3://{bucket}/{prefix}"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    run_id = (event.get("run") or {}).get("run_id")
    if run_id:
        logger.append_keys(run_id=run_id)
    # Only the jobs this execution started: a failing duplicate delivery must not stop the
    # jobs the first execution of the same upload is following.
    owned = Tuning.from_dict(event["tuning"]).started if event.get("tuning") else ()
    sm = clients.client("sagemaker")
    stopped = (stop_running(owned, sm) if owned else []) + stop_evaluation(event.get("evaluation"), sm)
    logger.error("run failed", extra={"error": event.get("error"), "stopped": stopped})
    name, uri = uploaded_dataset(event)
    notice = failure_message(
        event.get("error") or {},
        run_id=run_id,
        dataset_name=name,
        dataset_uri=uri,
        stopped=stopped,
        region=os.environ["AWS_REGION"],
    )
    return dataclasses.asdict(notice)
