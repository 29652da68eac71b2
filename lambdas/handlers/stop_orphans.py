"""When an execution ends, however it ends, stop what it left running and delete its evaluation model.

The workflow's own failure path stops jobs for errors it catches; an abort or the overall
timeout ends the execution without running any state, and a run that registered after giving up
on its evaluation (retries exhausted, a Lambda killed at its timeout) may leave the transform
running. So this function, triggered by the execution's status change, makes sure no GPU keeps
running. It acts only on what is tagged with that execution: another delivery of the same upload
may be following it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.release import all_clients, release_execution
from handlers.start_evaluation import delete_model, model_missing
from pipeline import clients
from pipeline.admission import Governance
from pipeline.dataset import DatasetError
from pipeline.errors import classified_aws_errors
from pipeline.evaluation import model_name
from pipeline.naming import run_id
from pipeline.observe import logger, tracer
from pipeline.ownership import owner
from pipeline.validation import ref_from_event


def run_of_execution(detail: dict[str, Any]) -> str | None:
    """The run id an execution worked on, from its input (the manifest's S3 event)."""
    try:
        ref = ref_from_event(json.loads(detail.get("input") or "{}"))
    except (DatasetError, json.JSONDecodeError):
        return None
    return run_id(ref.bucket, ref.name, ref.version_id)


def stop_run(run: str, sm: Any, execution: str) -> list[str]:
    """Stop the run's InProgress tuning jobs that `execution` created; return their names."""
    stopped = []
    with classified_aws_errors():
        pages = sm.get_paginator("list_hyper_parameter_tuning_jobs").paginate(
            NameContains=run, StatusEquals="InProgress"
        )
        for page in pages:
            for job in page["HyperParameterTuningJobSummaries"]:
                name = job["HyperParameterTuningJobName"]
                ours = name == run or name.startswith(f"{run}-")
                if ours and owner(sm, job["HyperParameterTuningJobArn"]) == execution:
                    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                    stopped.append(name)
    return stopped


def stop_run_evaluation(run: str, sm: Any, execution: str) -> list[str]:
    """Stop the run's InProgress test-split transform that `execution` created."""
    stopped = []
    with classified_aws_errors():
        listed = sm.list_transform_jobs(NameContains=run, StatusEquals="InProgress", MaxResults=100)
        for job in listed["TransformJobSummaries"]:
            name = job["TransformJobName"]
            if name.startswith(f"{run}-") and owner(sm, job["TransformJobArn"]) == execution:
                sm.stop_transform_job(TransformJobName=name)
                stopped.append(name)
    return stopped


def delete_run_model(run: str, sm: Any, execution: str) -> list[str]:
    """Delete the run's evaluation model if `execution` created it: an abort between StartEvaluation
    and the end of CheckEvaluation leaves it behind (models are free, but they pile up)."""
    name = model_name(run)
    with classified_aws_errors():
        try:
            arn = sm.describe_model(ModelName=name)["ModelArn"]
        except ClientError as exc:
            if model_missing(exc):
                return []
            raise
        if owner(sm, arn) != execution:
            return []
        delete_model(sm, name)
    return [name]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event of an execution that ended."""
    detail = event.detail
    run = run_of_execution(detail)
    if run is None:
        logger.info("execution did not work on a dataset run", extra={"execution": detail.get("executionArn")})
        return {"run_id": None, "stopped": []}
    logger.append_keys(run_id=run)
    sm, execution = clients.client("sagemaker"), detail.get("executionArn", "")
    stopped = stop_run(run, sm, execution) + stop_run_evaluation(run, sm, execution)
    deleted = delete_run_model(run, sm, execution)
    # After the jobs are stopped: the slots go to the next queued run, the reservation to the ledger.
    started = datetime.fromtimestamp(int(detail.get("startDate") or 0) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    released = release_execution(execution, started, Governance.from_environment(), all_clients(), settle=True)
    (logger.warning if stopped else logger.info)(
        "execution ended; stopped its running tuning jobs" if stopped else "execution ended; no tuning job running",
        extra={
            "status": detail.get("status"),
            "execution": detail.get("executionArn"),
            "stopped": stopped,
            "deleted_models": deleted,
            "released": released,
        },
    )
    return {"run_id": run, "stopped": stopped, "deleted_models": deleted, **released}
