"""The platform's state, without the console: runs holding slots and runs queued, per instance type,
and the month's spend and reservations, read from the governance table.

    python -m tools.runs [--env dev] [--month 2026-12] [--json]

Reads only (DynamoDB GetItem and Query on the deployment's table) with the credentials boto3
finds. The table's name and the capacity come from cdk.json, as the stack was deployed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3

from pipeline.governance.ledger import Ledger
from pipeline.governance.slots import HELD, QUEUED, Slots
from tools.synth import ROOT


def state(
    db: Any, table: str, capacity: dict[str, int], month: str, budget: Decimal | None, now: float
) -> dict[str, Any]:
    slots, ledger = Slots(db, table, time.time), Ledger(db, table, budget)
    pools = {}
    for instance_type, configured in capacity.items():
        tickets = slots.tickets(instance_type)
        held, limit = slots.pool(instance_type)
        pools[instance_type] = {
            "capacity": configured,
            "limit": configured if limit is None else limit,
            "held": held,
            "holding": [
                {"run_id": t.run_id, "phase": t.phase, "slots": t.slots, "for_seconds": round(now - t.admitted_at)}
                for t in tickets
                if t.state == HELD
            ],
            "queued": [
                {"run_id": t.run_id, "phase": t.phase, "slots": t.slots, "waiting_seconds": round(now - t.enqueued_at)}
                for t in tickets
                if t.state == QUEUED
            ],
        }
    totals = ledger.month(month)
    return {
        "month": month,
        "budget_usd": None if budget is None else str(budget),
        "billed_usd": str(totals.billed),
        "reserved_usd": str(totals.reserved),
        "remaining_usd": None if totals.remaining is None else str(totals.remaining),
        "runs": [
            {
                "run_id": e["run_id"]["S"],
                "state": e["state"]["S"],
                "reserved_usd": e["reserved"]["N"],
                "billed_usd": e["billed"]["N"],
            }
            for e in ledger.entries(month)
        ],
        "slots": pools,
    }


def text(report: dict[str, Any]) -> str:
    lines = []
    for instance_type, pool in report["slots"].items():
        lines.append(
            f"{instance_type}: {pool['held']} of {pool['limit']} slots held (capacity {pool['capacity']}), "
            f"{len(pool['queued'])} run(s) queued"
        )
        lines += [
            f"  holding  {h['run_id']} ({h['phase']}, {h['slots']} slots, {h['for_seconds']} s)"
            for h in pool["holding"]
        ]
        lines += [
            f"  queued   {q['run_id']} ({q['phase']}, {q['slots']} slots, waiting {q['waiting_seconds']} s)"
            for q in pool["queued"]
        ]
    budget = "no monthly budget" if report["budget_usd"] is None else f"budget ${report['budget_usd']}"
    lines.append(
        f"{report['month']}: ${report['billed_usd']} billed, ${report['reserved_usd']} reserved, {budget}"
        + ("" if report["remaining_usd"] is None else f", ${report['remaining_usd']} remaining")
    )
    running = [r for r in report["runs"] if r["state"] == "reserved"]
    lines.append(f"  {len(running)} run(s) with a reservation, {len(report['runs']) - len(running)} settled this month")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.runs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="dev")
    parser.add_argument("--month", default=datetime.now(UTC).strftime("%Y-%m"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.config import load_config

    config = load_config(json.loads((ROOT / "cdk.json").read_text())["context"], args.env)
    budget = config.governance.monthly_budget_usd
    report = state(
        boto3.client("dynamodb"),
        config.table_name,
        config.governance.capacity,
        args.month,
        None if budget is None else Decimal(str(budget)),
        time.time(),
    )
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else text(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
