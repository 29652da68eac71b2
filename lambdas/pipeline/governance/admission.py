"""Admission across runs: what the deployment allows at once, what the account's quota allows,
and how a waiting run is sent on.

The deployment owns a capacity per instance type (`capacity` in cdk.json), handed to the
functions as `CAPACITY`. Where the account's applied quota can be read (Service Quotas,
`ListServiceQuotas` for service code `sagemaker`, matched by the quota's name), a run is admitted
against the smaller of the two and the notice says so; where it cannot, against the capacity,
and the notice says that too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import AdmissionRefused, error_code
from pipeline.governance.slots import EVALUATION, TRAINING, Slots, Ticket, Wake

QUOTA_SERVICE = "sagemaker"
USAGE = {TRAINING: "training", EVALUATION: "transform"}
# SendTaskSuccess's answers for a token whose execution no longer waits (Step Functions API reference).
GONE = frozenset({"InvalidToken", "TaskTimedOut", "TaskDoesNotExist"})


@dataclass(frozen=True)
class Admitted:
    """What Admit sends a run on with (SendTaskSuccess's output): its lease, and how long it waited."""

    instance_type: str
    slots: int
    limit: int
    enqueued_at: float
    admitted_at: float
    waited_seconds: float
    note: str

    def line(self, what: str) -> str:
        """For the notice: "Training slots: queued 95 s until 2 ml.g4dn.xlarge slots of 2 were free." """
        held = f"{self.slots} {self.instance_type} slot{'s' if self.slots != 1 else ''} of {self.limit}"
        note = f" {self.note}" if self.note else ""
        if self.waited_seconds < 1:
            return f"{what}: admitted at once ({held}).{note}"
        wait = f"{self.waited_seconds:,.0f} s" if self.waited_seconds < 120 else f"{self.waited_seconds / 60:,.1f} min"
        return f"{what}: queued {wait} until {held} {'was' if self.slots == 1 else 'were'} free.{note}"


@dataclass(frozen=True)
class Admissions:
    """The run's leases: the training instances', then the test transform's (when it has a test split)."""

    training: Admitted
    evaluation: Admitted | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Admissions:
        evaluation = d.get("evaluation")
        return cls(Admitted(**d["training"]), Admitted(**evaluation) if evaluation else None)


@dataclass(frozen=True)
class Governance:
    table: str
    capacity: Mapping[str, int]
    monthly_budget_usd: Decimal | None

    @classmethod
    def from_environment(cls) -> Governance:
        budget = os.environ.get("MONTHLY_BUDGET_USD", "")
        return cls(
            table=os.environ["GOVERNANCE_TABLE"],
            capacity=json.loads(os.environ["CAPACITY"]),
            monthly_budget_usd=Decimal(budget) if budget else None,
        )


def quota_name(instance_type: str, phase: str, spot: bool = False) -> str:
    """The quota's name in Service Quotas, e.g. "ml.g4dn.xlarge for training job usage"; managed
    spot training counts against its own, "ml.g4dn.xlarge for spot training job usage"."""
    return f"{instance_type} for {'spot ' if spot and phase == TRAINING else ''}{USAGE[phase]} job usage"


def applied_quota(quotas: Any, name: str) -> tuple[int | None, str]:
    """(the account's applied value of the quota `name`, or None; why None)."""
    try:
        for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode=QUOTA_SERVICE):
            for quota in page.get("Quotas", []):
                if quota.get("QuotaName") == name:
                    return int(quota["Value"]), ""
    except ClientError as exc:
        return None, f"Service Quotas could not be read ({exc.response.get('Error', {}).get('Code', 'error')})"
    return None, "Service Quotas lists no such quota"


def limit_for(
    capacity: Mapping[str, int],
    instance_type: str,
    phase: str,
    quotas: Any,
    *,
    spot: bool = False,
    recorded: int | None = None,
) -> tuple[int, str]:
    """(the slots runs may hold at once, a note for the notice: empty when capacity is the limit
    and the quota allows it). `recorded`: the limit admission last recorded, kept when the quota
    cannot be read now (a throttled read must not raise every run's limit to the capacity)."""
    if instance_type not in capacity:
        raise AdmissionRefused(
            f"instance type {instance_type} has no capacity in this deployment: add it to 'capacity' in cdk.json "
            f"(the slots of each instance type runs may hold at once; now {dict(capacity)}). Nothing was started."
        )
    configured = capacity[instance_type]
    name = quota_name(instance_type, phase, spot)
    quota, why = applied_quota(quotas, name)
    if quota is None:
        if recorded is not None and recorded < configured:
            return (
                recorded,
                f"The quota '{name}' was not read ({why}): admitted against the last limit read, {recorded}.",
            )
        return configured, f"The quota '{name}' was not read ({why}): admitted against the capacity, {configured}."
    if quota < configured:
        return quota, (
            f"The capacity for {instance_type}, {configured}, is above the account's quota '{name}', {quota}: "
            f"runs are admitted against {quota}. Request a quota increase, or lower capacity in cdk.json."
        )
    return configured, ""


def refuse_if_too_large(ticket: Ticket, limit: int, note: str) -> None:
    if ticket.slots > limit:
        raise AdmissionRefused(
            f"the run needs {ticket.slots} {ticket.instance_type} instances at once for its {ticket.phase} "
            f"(max_parallel_jobs x 1 instance per job) but at most {limit} may run at once. {note} Lower "
            "max_parallel_jobs, or raise capacity in cdk.json. Nothing was started.".replace("  ", " ")
        )


def admission_output(ticket: Ticket, limit: int) -> dict[str, Any]:
    return {
        "instance_type": ticket.instance_type,
        "slots": ticket.slots,
        "limit": limit,
        "enqueued_at": ticket.enqueued_at,
        "admitted_at": ticket.admitted_at,
        "waited_seconds": round(max(0.0, ticket.admitted_at - ticket.enqueued_at), 1),
        "note": ticket.note,
    }


def waker(sfn: Any, slots: Slots) -> Wake:
    """Send an admitted ticket's run on with SendTaskSuccess; False when that run no longer waits."""

    def wake(ticket: Ticket) -> bool:
        if not ticket.token:
            return True
        _, limit = slots.pool(ticket.instance_type)
        output = admission_output(ticket, limit or 0)
        try:
            sfn.send_task_success(taskToken=ticket.token, output=json.dumps(output))
        except ClientError as exc:
            if error_code(exc) in GONE:
                return False
            raise
        return True

    return wake


def pump_all(slots: Slots, capacity: Mapping[str, int], instance_types: set[str], wake: Wake) -> list[Ticket]:
    """Admit what fits now in each of `instance_types`, against the limit admission last recorded."""
    admitted = []
    for instance_type in sorted(instance_types):
        _, limit = slots.pool(instance_type)
        admitted += slots.pump(instance_type, capacity.get(instance_type, 0) if limit is None else limit, wake)
    return admitted
