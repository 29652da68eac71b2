"""The month's spend, across runs: a run reserves its worst case at admission, and when it ends
the reservation is settled to what it billed.

Items of the governance table (partition key `pk`, sort key `sk`), one month per partition:

    MONTH#<yyyy-mm>   #total           committed = reserved + billed; reserved; billed
    MONTH#<yyyy-mm>   RUN#<execution>  the run's reservation: reserved, billed, state, prices

A run's month is the month its execution started in (UTC), at reservation and at settlement.
Amounts are US dollars in cents (Decimal), the precision of the worst case the plan shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import MonthlyBudgetExceeded, conflicted, error_code

TOTAL = "#total"
RESERVED, SETTLED = "reserved", "settled"
CENT = Decimal("0.01")


def usd(value: float | Decimal | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(started: str) -> str:
    """ "2026-12-07T05:21:10.123Z" -> "2026-12": an execution's start time, as Step Functions writes it."""
    return started[:7]


@dataclass(frozen=True)
class Month:
    month: str
    budget: Decimal | None
    billed: Decimal
    reserved: Decimal

    @property
    def remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.billed - self.reserved


def refusal(month: Month, worst_case: Decimal, per_job: Decimal | None = None) -> str:
    """The words of a run refused by the month's budget: the plan's and the workflow's."""
    remaining = month.remaining if month.remaining is not None else Decimal(0)
    fits = f"${max(remaining, Decimal(0)):,.2f}"
    hint = ""
    if per_job and per_job > 0 and remaining >= per_job:
        hint = (
            f" (at this instance type and max_runtime_seconds: max_training_jobs {int(remaining // per_job)} or fewer)"
        )
    return (
        f"the month's budget is spent or promised: monthly_budget_usd ${month.budget:,.2f} for {month.month}, "
        f"${month.billed:,.2f} billed by ended runs, ${month.reserved:,.2f} reserved by running and queued runs; "
        f"this run's worst case is ${worst_case:,.2f} and only {fits} would fit{hint}. Lower the run's worst case, "
        "wait for running runs to end (their reservations settle to what they billed), or raise "
        "monthly_budget_usd in cdk.json. Nothing was started."
    )


def _key(month: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": f"MONTH#{month}"}, "sk": {"S": sk}}


def _amount(item: dict[str, Any], name: str) -> Decimal:
    return Decimal(item.get(name, {}).get("N", "0"))


class Ledger:
    def __init__(self, db: Any, table: str, budget: Decimal | None) -> None:
        self.db, self.table, self.budget = db, table, budget

    def month(self, month: str) -> Month:
        item = self.db.get_item(TableName=self.table, Key=_key(month, TOTAL), ConsistentRead=True).get("Item", {})
        return Month(month, self.budget, _amount(item, "billed"), _amount(item, "reserved"))

    def entries(self, month: str) -> list[dict[str, Any]]:
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": {"S": f"MONTH#{month}"}, ":run": {"S": "RUN#"}},
            ConsistentRead=True,
        )
        return [item for page in pages for item in page.get("Items", [])]

    def reserve(self, month: str, execution: str, amount: Decimal, facts: dict[str, str]) -> None:
        """Reserve `amount` for the run, or raise BudgetExceeded in `refusal`'s words; a retried
        reservation of the same execution changes nothing."""
        if self.budget is not None and amount > self.budget:
            raise MonthlyBudgetExceeded(refusal(self.month(month), amount))
        total: dict[str, Any] = {
            "Update": {
                "TableName": self.table,
                "Key": _key(month, TOTAL),
                "UpdateExpression": "ADD committed :a, reserved :a",
                "ExpressionAttributeValues": {":a": {"N": str(amount)}},
            }
        }
        if self.budget is not None:
            total["Update"]["ConditionExpression"] = "attribute_not_exists(committed) OR committed <= :room"
            total["Update"]["ExpressionAttributeValues"][":room"] = {"N": str(self.budget - amount)}
        entry = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **_key(month, f"RUN#{execution}"),
                    "reserved": {"N": str(amount)},
                    "billed": {"N": "0"},
                    "state": {"S": RESERVED},
                    **{k: {"S": v} for k, v in facts.items()},
                },
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }
        try:
            self.db.transact_write_items(TransactItems=[entry, total])
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return  # this execution reserved already (a retried admission)
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise MonthlyBudgetExceeded(refusal(self.month(month), amount)) from None
            raise

    def settle(self, month: str, execution: str, billed: Decimal) -> bool:
        """Turn the run's reservation into what it billed; False if there is none left to settle."""
        item = self.db.get_item(TableName=self.table, Key=_key(month, f"RUN#{execution}"), ConsistentRead=True).get(
            "Item"
        )
        if not item or item["state"]["S"] != RESERVED:
            return False
        reserved = _amount(item, "reserved")
        try:
            self.db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(month, f"RUN#{execution}"),
                            "UpdateExpression": "SET #state = :settled, billed = :billed",
                            "ConditionExpression": "#state = :reserved",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":settled": {"S": SETTLED},
                                ":reserved": {"S": RESERVED},
                                ":billed": {"N": str(billed)},
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(month, TOTAL),
                            "UpdateExpression": "ADD committed :change, reserved :unreserve, billed :billed",
                            "ExpressionAttributeValues": {
                                ":change": {"N": str(billed - reserved)},
                                ":unreserve": {"N": str(-reserved)},
                                ":billed": {"N": str(billed)},
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and not conflicted(exc):
                return False  # settled meanwhile by another path (the cleanup, the workflow)
            raise
        return True

    def facts(self, month: str, execution: str) -> dict[str, str] | None:
        item = self.db.get_item(TableName=self.table, Key=_key(month, f"RUN#{execution}"), ConsistentRead=True).get(
            "Item"
        )
        return None if item is None else {k: v["S"] for k, v in item.items() if "S" in v}
