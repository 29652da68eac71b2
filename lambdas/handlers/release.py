"""Release: give a run's slots back, settle its reservation to what it billed, and send the next
queued runs on.

Three callers, one code path (`release_execution`):
- the workflow, when the tuning is done (the training slots) and when the run ends (everything,
  and the ledger settled), on the success and on the failure path;
- the cleanup (`stop_orphans`), when an execution ends however it ends: an abort or a timeout
  runs no state of the workflow;
- the reaper, every few minutes (a scheduled rule): tickets and reservations of executions that
  are no longer running are given back and settled, in case a cleanup event was lost; it also
  publishes the slots in use and the queue's depth and age.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.choose_best import billable_seconds
from pipeline import clients
from pipeline.admission import Governance, pump_all, waker
from pipeline.cost import transform_price
from pipeline.errors import classified_aws_errors
from pipeline.evaluation import transform_job_name
from pipeline.ledger import Ledger, month_of, usd
from pipeline.observe import logger, tracer
from pipeline.ownership import owner
from pipeline.slots import QUEUED, Slots
from pipeline.telemetry import METRICS_NAMESPACE, SERVICE


def owned_tuning_jobs(sm: Any, run_id: str, execution: str) -> list[str]:
    """The run's tuning jobs, in any state, that `execution` created."""
    names = []
    for page in sm.get_paginator("list_hyper_parameter_tuning_jobs").paginate(NameContains=run_id):
        for job in page["HyperParameterTuningJobSummaries"]:
            name = job["HyperParameterTuningJobName"]
            ours = name == run_id or name.startswith(f"{run_id}-")
            if ours and owner(sm, job["HyperParameterTuningJobArn"]) == execution:
                names.append(name)
    return names


def transform_seconds(sm: Any, run_id: str, execution: str, now: float) -> float:
    """Billed seconds of the run's test transform: "You are billed for the time interval between"
    TransformStartTime and TransformEndTime (API reference, DescribeTransformJob)."""
    try:
        job = sm.describe_transform_job(TransformJobName=transform_job_name(run_id))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return 0.0  # the run never started one
        raise
    if owner(sm, job["TransformJobArn"]) != execution:
        return 0.0
    start = job.get("TransformStartTime") or job["CreationTime"]
    end = job.get("TransformEndTime")
    return float(max(0.0, (end.timestamp() if end else now) - start.timestamp()))


def run_billed(sm: Any, facts: dict[str, str], execution: str, now: float) -> Decimal:
    """What the run billed: its training jobs' BillableTimeInSeconds and its transform's time, at
    the prices its reservation recorded (on-demand: spot savings show in the billed seconds)."""
    run_id = facts["run_id"]
    with classified_aws_errors():
        seconds = billable_seconds(owned_tuning_jobs(sm, run_id, execution), sm)["seconds"]
        transform = transform_seconds(sm, run_id, execution, now)
    training = Decimal(seconds) * Decimal(facts["price_per_hour_usd"]) / 3600
    evaluation = Decimal(repr(transform)) * Decimal(repr(transform_price(facts["evaluation_instance_type"]))) / 3600
    return usd(training + evaluation)


def release_execution(
    execution: str,
    started: str,
    governance: Governance,
    clients_: dict[str, Any],
    *,
    phase: str | None = None,
    settle: bool = False,
) -> dict[str, Any]:
    """Give back the execution's tickets (of `phase`, or all), settle its reservation if asked,
    then admit the queued runs that now fit."""
    db, sfn, sm = clients_["dynamodb"], clients_["stepfunctions"], clients_["sagemaker"]
    slots = Slots(db, governance.table, time.time)
    with classified_aws_errors():
        released = slots.release(execution, governance.capacity, phase)
        billed = None
        if settle:
            ledger = Ledger(db, governance.table, governance.monthly_budget_usd)
            month = month_of(started)
            facts = ledger.facts(month, execution)
            if facts is not None and facts.get("state") == "reserved":
                billed = run_billed(sm, facts, execution, time.time())
                if not ledger.settle(month, execution, billed):
                    billed = None
        admitted = pump_all(slots, governance.capacity, set(governance.capacity), waker(sfn, slots))
    return {
        "released": [{"instance_type": t.instance_type, "slots": t.slots, "phase": t.phase} for t in released],
        "billed_usd": None if billed is None else str(billed),
        "admitted": [t.execution for t in admitted],
    }


def _running(sfn: Any, execution: str) -> bool:
    try:
        return bool(sfn.describe_execution(executionArn=execution)["status"] == "RUNNING")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise


def reap(governance: Governance, clients_: dict[str, Any], now: float) -> dict[str, Any]:
    """Give back and settle what executions that no longer run still hold; publish the queue's state."""
    db, sfn = clients_["dynamodb"], clients_["stepfunctions"]
    slots = Slots(db, governance.table, time.time)
    ended: dict[str, str] = {}
    with classified_aws_errors():
        for instance_type in governance.capacity:
            for ticket in slots.tickets(instance_type):
                if ticket.execution not in ended and not _running(sfn, ticket.execution):
                    ended[ticket.execution] = ticket.started
        ledger = Ledger(db, governance.table, governance.monthly_budget_usd)
        for month in {datetime.fromtimestamp(now - days * 86400, UTC).strftime("%Y-%m") for days in (0, 31)}:
            for entry in ledger.entries(month):
                execution = entry["sk"]["S"].removeprefix("RUN#")
                if entry["state"]["S"] == "reserved" and execution not in ended and not _running(sfn, execution):
                    ended[execution] = f"{month}-01T00:00:00Z"
    reaped = [release_execution(e, started, governance, clients_, settle=True) for e, started in ended.items()]
    for instance_type in governance.capacity:
        tickets = slots.tickets(instance_type)
        queued = [t for t in tickets if t.state == QUEUED]
        held, _ = slots.pool(instance_type)
        oldest = max((now - t.enqueued_at for t in queued), default=0.0)
        for name, value, unit in (
            ("SlotsInUse", held, MetricUnit.Count),
            ("QueueDepth", len(queued), MetricUnit.Count),
            ("OldestQueuedSeconds", oldest, MetricUnit.Seconds),
        ):
            with single_metric(name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE) as metric:
                metric.add_dimension(name="service", value=SERVICE)
                metric.add_dimension(name="InstanceType", value=instance_type)
    return {"reaped": sorted(ended), "results": reaped}


def all_clients() -> dict[str, Any]:
    return {name: clients.client(name) for name in ("dynamodb", "stepfunctions", "sagemaker")}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """From the workflow: {"execution", "started", "phase" (or null: all), "settle"}; from the
    scheduled rule: an EventBridge "Scheduled Event"."""
    governance = Governance.from_environment()
    if event.get("detail-type") == "Scheduled Event":
        result = reap(governance, all_clients(), time.time())
        logger.info("reaped", extra=result)
        return result
    result = release_execution(
        event["execution"],
        event["started"],
        governance,
        all_clients(),
        phase=event.get("phase"),
        settle=bool(event.get("settle")),
    )
    logger.info("released", extra=result)
    return result
