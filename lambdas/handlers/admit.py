"""Admit: before a run starts any job, reserve its worst case in the month's ledger and take a lease
on its slots, or wait in the queue for them.

The workflow runs this with a task token (`.waitForTaskToken`): the run goes on when the token
is sent, by this invocation when the slots are free now, or later by whichever run gives slots
back. A queued run makes no requests while it waits, so its history does not grow.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.aws import clients
from pipeline.aws.errors import classified_aws_errors
from pipeline.aws.observe import logger, tracer
from pipeline.contract import Run
from pipeline.governance.admission import Governance, limit_for, pump_all, refuse_if_too_large, waker
from pipeline.governance.ledger import Ledger, month_of, usd
from pipeline.governance.slots import EVALUATION, TRAINING, Slots, Ticket
from pipeline.step_inputs import AdmitInput


def ticket_of(run: Run, phase: str, execution: str, started: str, token: str) -> Ticket:
    """The slots a phase needs: every parallel training job's instance, or the transform's one."""
    settings = run.settings
    if phase == TRAINING:
        instance_type, slots = settings.instance_type, settings.max_parallel_jobs
    else:
        instance_type, slots = settings.evaluation_instance_type, 1
    return Ticket(instance_type, slots, execution, phase, started, run_id=run.run_id, token=token)


def admit(event: dict[str, Any], governance: Governance, db: Any, sfn: Any, quotas: Any) -> dict[str, Any]:
    inputs = AdmitInput.parse(event)
    run, phase = inputs.run, inputs.phase
    logger.append_keys(run_id=run.run_id)
    if phase not in (TRAINING, EVALUATION):
        raise ValueError(f"Admit: phase must be {TRAINING} or {EVALUATION}, got {phase!r}")
    ticket = ticket_of(run, phase, inputs.execution, inputs.started, inputs.token)
    slots = Slots(db, governance.table, time.time)
    spot = phase == TRAINING and run.settings.use_spot
    with classified_aws_errors():
        _, recorded = slots.pool(ticket.instance_type)
    limit, note = limit_for(governance.capacity, ticket.instance_type, phase, quotas, spot=spot, recorded=recorded)
    ticket = dataclasses.replace(ticket, note=note)
    refuse_if_too_large(ticket, limit, note)
    with classified_aws_errors():
        if phase == TRAINING:
            Ledger(db, governance.table, governance.monthly_budget_usd).reserve(
                month_of(ticket.started),
                ticket.execution,
                usd(run.cost.worst_case_usd),
                {
                    "run_id": run.run_id,
                    "dataset": run.dataset.uri,
                    "price_per_hour_usd": str(run.cost.price_per_hour_usd),
                    "evaluation_instance_type": run.settings.evaluation_instance_type,
                },
            )
        slots.record_limit(ticket.instance_type, limit)
        stored = slots.enqueue(ticket)
        wake = waker(sfn, slots)
        if stored.state == "held":  # a retried admission whose slots were granted meanwhile
            wake(stored)
        admitted = pump_all(slots, governance.capacity, {ticket.instance_type}, wake)
    queued = [t for t in slots.tickets(ticket.instance_type) if t.state == "queued"]
    position = next((i for i, t in enumerate(queued, 1) if t.key == ticket.key), 0)
    logger.info(
        "admission",
        extra={
            "phase": phase,
            "instance_type": ticket.instance_type,
            "slots": ticket.slots,
            "limit": limit,
            "queued_at_position": position,
            "admitted": [t.execution for t in admitted],
            "note": note,
        },
    )
    return {"queued_at_position": position, "limit": limit}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return admit(
        event,
        Governance.from_environment(),
        clients.client("dynamodb"),
        clients.client("stepfunctions"),
        clients.client("service-quotas"),
    )
