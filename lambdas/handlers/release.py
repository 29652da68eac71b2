"""Release: give a run's slots back, settle its reservation to what it billed, and send the next
queued runs on.

Two callers, one code path (`release_execution`):
- the workflow, when the tuning is done (the training slots) and when the run ends (everything,
  and the ledger settled), on the success and on the failure path;
- the cleanup (`stop_orphans`), when an execution ends however it ends (an abort or a timeout
  runs no state of the workflow), and its reaper, for executions whose end event was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.choose_best import billable_seconds
from pipeline.aws import clients
from pipeline.aws.errors import TransientAwsError, classified_aws_errors, error_code
from pipeline.aws.observe import logger, tracer
from pipeline.aws.tags import owner
from pipeline.evaluation.transform import transform_job_name
from pipeline.governance.admission import Governance, pump_all, waker
from pipeline.governance.ledger import Ledger, month_of, usd
from pipeline.governance.slots import TRAINING, Slots, Ticket
from pipeline.step_inputs import ReleaseInput
from pipeline.tuning.cost import transform_price

# A job in these states still holds its instances (a stopped job's instances are released only
# once it reaches Stopped).
RUNNING_STATES = ("InProgress", "Stopping")


def owned_tuning_jobs(sm: Any, run_id: str, execution: str, *, running: bool = False) -> list[str]:
    """The run's tuning jobs that `execution` created: in any state, or only those still `running`."""
    names = []
    for page in sm.get_paginator("list_hyper_parameter_tuning_jobs").paginate(NameContains=run_id):
        for job in page["HyperParameterTuningJobSummaries"]:
            name = job["HyperParameterTuningJobName"]
            ours = name == run_id or name.startswith(f"{run_id}-")
            if running and job["HyperParameterTuningJobStatus"] not in RUNNING_STATES:
                continue
            if ours and owner(sm, job["HyperParameterTuningJobArn"]) == execution:
                names.append(name)
    return names


def instances_in_use(sm: Any) -> Callable[[Ticket], bool]:
    """Whether a held ticket's jobs still run (or stop): then its slots are not free yet, and
    giving them back would let the next run meet SageMaker's quota refusal."""

    def in_use(ticket: Ticket) -> bool:
        if ticket.phase == TRAINING:
            return bool(owned_tuning_jobs(sm, ticket.run_id, ticket.execution, running=True))
        try:
            job = sm.describe_transform_job(TransformJobName=transform_job_name(ticket.run_id))
        except ClientError as exc:
            if error_code(exc) in ("ValidationException", "ResourceNotFound"):
                return False
            raise
        return job["TransformJobStatus"] in RUNNING_STATES and owner(sm, job["TransformJobArn"]) == ticket.execution

    return in_use


def transform_seconds(sm: Any, run_id: str, execution: str, now: float) -> float:
    """Billed seconds of the run's test transform: "You are billed for the time interval between"
    TransformStartTime and TransformEndTime (API reference, DescribeTransformJob)."""
    try:
        job = sm.describe_transform_job(TransformJobName=transform_job_name(run_id))
    except ClientError as exc:
        if error_code(exc) in ("ValidationException", "ResourceNotFound"):
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
        bill = billable_seconds(owned_tuning_jobs(sm, run_id, execution), sm)
        transform = transform_seconds(sm, run_id, execution, now)
    if bill["jobs"] is None or bill["counted"] != bill["jobs"]:
        # Settled is final: a bill missing jobs (throttled describes) waits for the next try.
        raise TransientAwsError(f"the bill of {run_id} is not complete: {bill['counted']} of {bill['jobs']} jobs read")
    seconds = bill["seconds"]
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
    then admit the queued runs that now fit. Slots whose jobs still stop are kept, and the
    reservation with them (the bill is not final): the cleanup's reaper comes back for both."""
    db, sfn, sm = clients_["dynamodb"], clients_["stepfunctions"], clients_["sagemaker"]
    slots = Slots(db, governance.table, time.time)
    with classified_aws_errors():
        released = slots.release(execution, governance.capacity, phase, instances_in_use(sm))
        kept = [t for kind in governance.capacity for t in slots.tickets(kind) if t.execution == execution]
        billed = None
        if settle and not kept:
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
        "kept": [{"instance_type": t.instance_type, "slots": t.slots, "phase": t.phase} for t in kept],
    }


def all_clients() -> dict[str, Any]:
    return {name: clients.client(name) for name in ("dynamodb", "stepfunctions", "sagemaker")}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """From the workflow: ReleaseInput (a phase's slots, or all of them and settle)."""
    inputs = ReleaseInput.parse(event)
    result = release_execution(
        inputs.execution,
        inputs.started,
        Governance.from_environment(),
        all_clients(),
        phase=inputs.phase,
        settle=inputs.settle,
    )
    logger.info("released", extra=result)
    return result
