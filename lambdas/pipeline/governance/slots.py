"""GPU slots shared by every run of the deployment: leases taken with conditional writes, and a
queue served first come, first served.

Items of the governance table (partition key `pk`, sort key `sk`):

    SLOTS#<type>   #pool                                    held: the slots leased now
                                                            limit: what admission last allowed
    SLOTS#<type>   T#<execution start>#<execution>#<phase>  a ticket: queued, with the task token
                                                            of the waiting run, or held

The pool's `held` is the sum of its held tickets' slots: every change to one is a transaction
that changes the other under a condition, so two runs never hold more than the limit, even when
they ask in the same second. Tickets sort by their execution's start time: the queue's order is
the order the uploads started their runs in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import conflicted, error_code

POOL = "#pool"
TICKET = "T#"
QUEUED, HELD = "queued", "held"
TRAINING, EVALUATION = "training", "evaluation"
# Reads of the queue one pump may make when other writers keep changing it under its feet.
PUMP_ATTEMPTS = 25


@dataclass(frozen=True)
class Ticket:
    instance_type: str
    slots: int
    execution: str
    phase: str
    started: str  # the execution's start time, ISO 8601: the queue's order
    run_id: str = ""
    state: str = QUEUED
    token: str = ""
    enqueued_at: float = 0.0
    admitted_at: float = 0.0
    note: str = ""  # what admission told this run about capacity and quota

    @property
    def key(self) -> dict[str, Any]:
        return {
            "pk": {"S": pool_key(self.instance_type)},
            "sk": {"S": f"{TICKET}{self.started}#{self.execution}#{self.phase}"},
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Ticket:
        return cls(
            instance_type=item["pk"]["S"].removeprefix("SLOTS#"),
            slots=int(item["slots"]["N"]),
            execution=item["execution"]["S"],
            phase=item["phase"]["S"],
            started=item["started"]["S"],
            run_id=item["run_id"]["S"],  # enqueue writes every attribute but admitted_at
            state=item["state"]["S"],
            token=item["token"]["S"],
            enqueued_at=float(item["enqueued_at"]["N"]),
            admitted_at=float(item.get("admitted_at", {}).get("N", "0")),  # set when granted
            note=item["note"]["S"],
        )


def pool_key(instance_type: str) -> str:
    return f"SLOTS#{instance_type}"


def _condition_failed(exc: ClientError) -> bool:
    """A condition did not hold (the state read has changed); a conflict is not that: it is retried."""
    return error_code(exc) in ("TransactionCanceledException", "ConditionalCheckFailedException") and not conflicted(
        exc
    )


Wake = Callable[[Ticket], bool]  # send the ticket's run on; False: that run no longer waits


class Slots:
    """The slots of the governance table `table`, through the DynamoDB client `db`."""

    def __init__(self, db: Any, table: str, clock: Callable[[], float]) -> None:
        self.db, self.table, self.clock = db, table, clock

    def pool(self, instance_type: str) -> tuple[int, int | None]:
        """(slots held now, the limit admission last recorded, or None)."""
        item = self.db.get_item(
            TableName=self.table, Key={"pk": {"S": pool_key(instance_type)}, "sk": {"S": POOL}}, ConsistentRead=True
        ).get("Item", {})
        limit = item.get("limit", {}).get("N")
        return int(item.get("held", {}).get("N", "0")), None if limit is None else int(limit)

    def record_limit(self, instance_type: str, limit: int) -> None:
        self.db.update_item(
            TableName=self.table,
            Key={"pk": {"S": pool_key(instance_type)}, "sk": {"S": POOL}},
            UpdateExpression="SET #limit = :limit",
            ExpressionAttributeNames={"#limit": "limit"},
            ExpressionAttributeValues={":limit": {"N": str(limit)}},
        )

    def tickets(self, instance_type: str) -> list[Ticket]:
        """Every ticket of the type, queued and held, in queue order."""
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ticket)",
            ExpressionAttributeValues={":pk": {"S": pool_key(instance_type)}, ":ticket": {"S": TICKET}},
            ConsistentRead=True,
        )
        return [Ticket.from_item(item) for page in pages for item in page.get("Items", [])]

    def enqueue(self, ticket: Ticket) -> Ticket:
        """Put the ticket in the queue, or, when a retried admission finds it there, give it the new
        task token; returns the ticket as stored (perhaps already held)."""
        values = {
            ":queued": {"S": QUEUED},
            ":token": {"S": ticket.token},
            ":slots": {"N": str(ticket.slots)},
            ":execution": {"S": ticket.execution},
            ":phase": {"S": ticket.phase},
            ":started": {"S": ticket.started},
            ":run_id": {"S": ticket.run_id},
            ":note": {"S": ticket.note},
            ":now": {"N": repr(self.clock())},
        }
        # Every name through ExpressionAttributeNames: "state" and "token" are DynamoDB reserved words.
        assigned = ("token", "slots", "execution", "phase", "started", "run_id", "note")
        stored = self.db.update_item(
            TableName=self.table,
            Key=ticket.key,
            UpdateExpression="SET #state = if_not_exists(#state, :queued), "
            + ", ".join(f"#{name} = :{name}" for name in assigned)
            + ", #enqueued_at = if_not_exists(#enqueued_at, :now)",
            ExpressionAttributeNames={f"#{name}": name for name in ("state", *assigned, "enqueued_at")},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return Ticket.from_item(stored)

    def grant(self, ticket: Ticket, limit: int) -> bool:
        """Lease the ticket's slots if the pool has room and the ticket still waits; False if not."""
        room = limit - ticket.slots
        try:
            self.db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": pool_key(ticket.instance_type)}, "sk": {"S": POOL}},
                            "UpdateExpression": "SET held = if_not_exists(held, :zero) + :n",
                            "ConditionExpression": "attribute_not_exists(held) OR held <= :room",
                            "ExpressionAttributeValues": {
                                ":zero": {"N": "0"},
                                ":n": {"N": str(ticket.slots)},
                                ":room": {"N": str(room)},
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": ticket.key,
                            "UpdateExpression": "SET #state = :held, admitted_at = :now",
                            "ConditionExpression": "#state = :queued",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":held": {"S": HELD},
                                ":queued": {"S": QUEUED},
                                ":now": {"N": repr(self.clock())},
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def give_back(self, ticket: Ticket) -> bool:
        """Delete the ticket and, if it was held, return its slots to the pool; False when the
        ticket is not (or no longer) in the state read, with the token read."""
        # The token too: a retried Admit may have given the ticket a new one (and woken its run) since.
        condition = {
            "ConditionExpression": "#state = :state AND #token = :token",
            "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
            "ExpressionAttributeValues": {":state": {"S": ticket.state}, ":token": {"S": ticket.token}},
        }
        try:
            if ticket.state == QUEUED:
                self.db.delete_item(TableName=self.table, Key=ticket.key, **condition)
                return True
            self.db.transact_write_items(
                TransactItems=[
                    {"Delete": {"TableName": self.table, "Key": ticket.key, **condition}},
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": pool_key(ticket.instance_type)}, "sk": {"S": POOL}},
                            "UpdateExpression": "SET held = held - :n",
                            "ConditionExpression": "held >= :n",
                            "ExpressionAttributeValues": {":n": {"N": str(ticket.slots)}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def pump(self, instance_type: str, limit: int, wake: Wake) -> list[Ticket]:
        """Lease slots to the queue's head, then the next, while they fit; strictly in order (a
        large head is not overtaken, or it would wait forever). Returns the tickets admitted."""
        admitted: list[Ticket] = []
        for _ in range(PUMP_ATTEMPTS):
            queued = [t for t in self.tickets(instance_type) if t.state == QUEUED]
            if not queued:
                break
            head = queued[0]
            held, _ = self.pool(instance_type)
            if held + head.slots > limit:
                break
            if not self.grant(head, limit):
                continue  # another pump or release changed the pool or the ticket: read again
            head = dataclasses.replace(head, state=HELD, admitted_at=self.clock())
            if wake(head):
                admitted.append(head)
            else:  # its run stopped waiting (aborted, timed out): the slots go to the next
                self.give_back(head)
        return admitted

    def release(
        self,
        execution: str,
        instance_types: Iterable[str],
        phase: str | None = None,
        in_use: Callable[[Ticket], bool] = lambda ticket: False,
    ) -> list[Ticket]:
        """Give back every ticket of `execution` (of `phase` only, if given), queued or held; a held
        one whose instances are still `in_use` (its jobs still stopping) is kept for a later release."""
        released = []
        for instance_type in instance_types:
            for _ in range(PUMP_ATTEMPTS):
                mine = [
                    t
                    for t in self.tickets(instance_type)
                    if t.execution == execution
                    and (phase is None or t.phase == phase)
                    and not (t.state == HELD and in_use(t))
                ]
                if not mine:
                    break
                for ticket in mine:
                    if self.give_back(ticket):
                        released.append(ticket)
        return released
