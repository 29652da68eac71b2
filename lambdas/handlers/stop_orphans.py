"""When an execution ends, however it ends, stop what it left running, delete its evaluation model,
give its slots back and settle its reservation in the month's ledger.

The workflow's own failure path stops jobs for errors it catches; an abort or the overall
timeout ends the execution without running any state, and a run that registered after giving up
on its evaluation (retries exhausted, a Lambda killed at its timeout) may leave the transform
running. So this function, triggered by the execution's status change, makes sure no GPU keeps
running. It acts only on what is tagged with that execution: another delivery of the same upload
may be following it.

Every few minutes a scheduled rule runs it as the reaper: an execution that no longer runs but
still holds a ticket or a reservation (its end event was lost, or its cleanup failed for good)
is cleaned up the same way, so a leak cannot block the queue. The reaper also publishes the
slots in use and the queue's depth and age per instance type (the dashboard and the alarm).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.release import all_clients, release_execution
from handlers.start_evaluation import delete_model, model_missing
from pipeline.aws import clients
from pipeline.aws.errors import DatasetError, classified_aws_errors, error_code
from pipeline.aws.observe import logger, tracer
from pipeline.aws.tags import owner
from pipeline.aws.telemetry import METRICS_NAMESPACE, SERVICE
from pipeline.dataset.validation import ref_from_event
from pipeline.evaluation.transform import model_name
from pipeline.governance.admission import Governance
from pipeline.governance.ledger import RESERVED, Ledger
from pipeline.governance.slots import QUEUED, Slots
from pipeline.tuning.naming import run_id


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


def clean_up(run: str, execution: str, started: str, governance: Governance) -> dict[str, Any]:
    """Stop the execution's jobs, delete its model; then its slots go to the next queued run and its
    reservation is settled to what it billed (once the jobs are stopped)."""
    sm = clients.client("sagemaker")
    stopped = stop_run(run, sm, execution) + stop_run_evaluation(run, sm, execution)
    deleted = delete_run_model(run, sm, execution)
    released = release_execution(execution, started, governance, all_clients(), settle=True)
    return {"run_id": run, "stopped": stopped, "deleted_models": deleted, **released}


def _running(sfn: Any, execution: str) -> bool:
    try:
        return bool(sfn.describe_execution(executionArn=execution)["status"] == "RUNNING")
    except ClientError as exc:
        if error_code(exc) == "ExecutionDoesNotExist":
            return False
        raise


def ended_holders(governance: Governance, db: Any, sfn: Any, now: float) -> dict[str, tuple[str, str]]:
    """Executions that no longer run but hold a ticket or an unsettled reservation (this month's or
    last month's): execution -> (run id, start time)."""
    slots, ledger = Slots(db, governance.table, time.time), Ledger(db, governance.table, governance.monthly_budget_usd)
    holders = {t.execution: (t.run_id, t.started) for kind in governance.capacity for t in slots.tickets(kind)}
    for month in sorted({datetime.fromtimestamp(now - days * 86_400, UTC).strftime("%Y-%m") for days in (0, 31)}):
        for entry in ledger.entries(month):
            if entry["state"]["S"] == RESERVED:
                execution = entry["sk"]["S"].removeprefix("RUN#")
                holders.setdefault(execution, (entry["run_id"]["S"], f"{month}-01T00:00:00Z"))
    return {e: held for e, held in holders.items() if not _running(sfn, e)}


def publish_queue(governance: Governance, db: Any, now: float) -> None:
    slots = Slots(db, governance.table, time.time)
    for instance_type in governance.capacity:
        queued = [t for t in slots.tickets(instance_type) if t.state == QUEUED]
        held, _ = slots.pool(instance_type)
        for name, value, unit in (
            ("SlotsInUse", held, MetricUnit.Count),
            ("QueueDepth", len(queued), MetricUnit.Count),
            ("OldestQueuedSeconds", max((now - t.enqueued_at for t in queued), default=0.0), MetricUnit.Seconds),
        ):
            with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE) as metric:
                metric.add_dimension(name="service", value=SERVICE)
                metric.add_dimension(name="InstanceType", value=instance_type)


def reap(governance: Governance, now: float) -> dict[str, Any]:
    db = clients.client("dynamodb")
    with classified_aws_errors():
        ended = ended_holders(governance, db, clients.client("stepfunctions"), now)
    publish_queue(governance, db, now)  # first: the dashboard and the alarm see the queue whatever follows
    results = []
    for execution, (run, started) in sorted(ended.items()):
        try:
            results.append(clean_up(run, execution, started, governance))
        except Exception as exc:  # one execution that cannot be cleaned up must not keep the others held
            logger.exception("reaper could not clean up an execution", extra={"execution": execution})
            results.append({"run_id": run, "execution": execution, "error": f"{type(exc).__name__}: {exc}"})
    logger.info("reaped", extra={"reaped": sorted(ended), "results": results})
    return {"reaped": sorted(ended), "results": results}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event of an execution that ended, or the
    reaper's "Scheduled Event"."""
    governance = Governance.from_environment()
    if event.get("detail-type") == "Scheduled Event":
        return reap(governance, time.time())
    detail = EventBridgeEvent(event).detail
    run = run_of_execution(detail)
    if run is None:
        logger.info("execution did not work on a dataset run", extra={"execution": detail.get("executionArn")})
        return {"run_id": None, "stopped": []}
    logger.append_keys(run_id=run)
    execution = detail.get("executionArn", "")
    started = datetime.fromtimestamp(int(detail.get("startDate") or 0) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = clean_up(run, execution, started, governance)
    (logger.warning if result["stopped"] else logger.info)(
        "execution ended; stopped its running tuning jobs"
        if result["stopped"]
        else "execution ended; no tuning job running",
        extra={"status": detail.get("status"), "execution": execution, **result},
    )
    return result
