"""Admission at scale: how long admitting a run takes with 20 and with 200 runs queued, and how many
history events a queued run writes while it waits. A benchmark, not a test: it reports, it does
not assert.

    python -m bench.admission [--out bench/results/admission.md]

1. The Admit handler's work (ledger reservation, ticket, pump) on moto's DynamoDB, one run after
   another into a queue that already holds N runs, N = 20 and 200, side by side in one process.
2. The synthesized workflow in local mode with a capacity of 2: one run holds both slots (its
   training idles) while N executions wait, N deliveries of one upload (an execution per
   delivery, as EventBridge starts them); each waiting execution's history is counted twice, W1
   and W2 seconds after the last one queued. Events per hour of waiting = (events at W2 - events
   at W1) / (W2 - W1) x 3600.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from handlers.admit import admit
from local.deploy import governance_table
from pipeline.governance.admission import Governance
from pipeline.governance.slots import QUEUED, Slots
from tools.synth import ROOT

GPU = "ml.g4dn.xlarge"


class NoQuotas:
    def get_paginator(self, operation: str) -> NoQuotas:
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"Quotas": [{"QuotaName": f"{GPU} for training job usage", "Value": 2.0}]}]


class Tokens:
    def send_task_success(self, **kwargs: Any) -> None:
        pass


def run_event(n: int) -> dict[str, Any]:
    """Admit's input for run n: a run as ValidateDataset writes it (2 parallel jobs, a $10 worst case)."""
    from pipeline.contract import Cost, DatasetRef, Run, Schedule
    from pipeline.settings.tuning_settings import TuningSettings
    from tests.sample_request import DATA

    run = Run(
        run_id=f"run{n:04d}",
        dataset=DatasetRef("datasets", f"d{n}", f"datasets/d{n}/manifest.json", "v1"),
        data=DATA,
        settings=TuningSettings.from_mapping({"instance_type": GPU, "max_parallel_jobs": 2}, where="bench"),
        schedule=Schedule(poll_seconds=60, max_tuning_seconds=36_000),
        cost=Cost(10.0, 0.736, 13.6, "bench", None),
    )
    return {
        "run": run.to_dict(),
        "phase": "training",
        "execution": f"arn:aws:states:us-east-1:123456789012:execution:m:{n:04d}",
        "started": f"2026-12-07T00:{n // 60:02d}:{n % 60:02d}.000Z",
        "token": f"token-{n}",
    }


def admission_seconds(queued: int, measured: int = 20) -> list[float]:
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        governance_table(db, "gov")
        governance = Governance("gov", {GPU: 2, "ml.m5.xlarge": 1}, Decimal("10000000"))
        times = []
        for n in range(queued + measured):
            began = time.perf_counter()
            admit(run_event(n), governance, db, Tokens(), NoQuotas())
            if n >= queued:
                times.append(time.perf_counter() - began)
        return times


def idle(job: Any, trial: Any, seed: int) -> None:
    """A training job that holds its instances and does nothing until it is stopped."""
    job.started, job.secondary = time.time(), "Training"
    job.stop.wait()
    job.status = job.secondary = "Stopped"
    job.ended = time.time()


def queued(slots: Slots) -> int:
    """Runs queued now. moto's in-memory table is not safe to read while the functions write to it
    (RuntimeError: dictionary changed size during iteration): such a read is simply made again."""
    while True:
        try:
            return sum(t.state == QUEUED for t in slots.tickets(GPU))
        except RuntimeError:
            time.sleep(0.1)


def history_events(waiting: int, first: float, second: float) -> dict[str, float]:
    from local.harness import LocalPipeline
    from tools.dataset import prepare, upload
    from tools.synth import synthesize

    work = ROOT / "bench" / "work-admission"
    tuning = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"]["local"]["tuning"]
    prefix = synthesize(
        work / "cdk.out",
        "local",
        {"capacity": {GPU: 2, "ml.m5.xlarge": 1}, "tuning": {**tuning, "max_cost_usd": 100000}},
    )
    from local.sample import build_sample

    images = build_sample(work / "images")
    two_jobs = {"max_training_jobs": 2, "max_parallel_jobs": 2, "epochs": 1}
    root = prepare(images, work / "dataset", tuning=two_jobs, progress=False).root  # 2 slots a run
    with LocalPipeline(work / "cdk.out", prefix, lambda_log=work / "lambda.jsonl") as pipeline:
        # The holder's training idles until it is stopped: the slots stay held without the CPU
        # training that would slow every waiter's validation down.
        pipeline.sagemaker_service._train = idle
        s3, bucket = pipeline.client("s3"), pipeline.deployed.datasets_bucket
        put = upload(root, s3, bucket, "d", progress=False)
        event = pipeline.object_created_event("datasets/d/manifest.json", put)

        def start() -> str:
            arn = pipeline.deliver(event)  # each delivery is an execution of its own (EventBridge names it)
            assert arn is not None
            return arn

        holder = start()
        while not pipeline.sagemaker_service.tuning_jobs:  # the holder has its slots before anyone queues
            time.sleep(0.5)
        waiters = [start() for _ in range(waiting)]
        sfn = pipeline.client("stepfunctions")

        slots = Slots(pipeline.client("dynamodb"), pipeline.deployed.table, time.time)
        while queued(slots) < waiting:  # the wait counts from the queue on
            time.sleep(1)

        def counts() -> list[int]:
            return [
                sum(len(page["events"]) for page in sfn.get_paginator("get_execution_history").paginate(executionArn=w))
                for w in waiters
            ]

        time.sleep(first)
        at_first = counts()
        time.sleep(second - first)
        at_second = counts()
        for arn in [holder, *waiters]:
            pipeline.abort(arn)
    grown = [b - a for a, b in zip(at_first, at_second, strict=True)]
    return {
        "events_at_first": statistics.mean(at_first),
        "events_at_second": statistics.mean(at_second),
        "events_per_hour": statistics.mean(grown) / (second - first) * 3600,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admission", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "admission.md")
    parser.add_argument("--wait", type=float, nargs=2, default=(10.0, 40.0), metavar=("W1", "W2"))
    parser.add_argument("--queued", type=int, nargs="+", default=(20, 200), metavar="N")
    args = parser.parse_args(argv)
    rows = []
    low, high = min(args.queued), max(args.queued)
    timings = {n: admission_seconds(n) for n in args.queued}
    for n, times in timings.items():
        rows.append(f"| {n} | {statistics.median(times) * 1000:.1f} ms | {max(times) * 1000:.1f} ms |")
    ratio = statistics.median(timings[high]) / statistics.median(timings[low])
    events = {n: history_events(n, *args.wait) for n in args.queued}
    lines = [
        "# Admission at scale (`python -m bench.admission`)",
        "",
        "Admit's work per run (reservation, ticket, pump), moto's DynamoDB, 20 runs measured each:",
        "",
        "| runs already queued | median | slowest |",
        "|---|---|---|",
        *rows,
        "",
        f"Median with {high} queued / median with {low} queued: {ratio:.2f}x (the pump reads the queue of the type).",
        "",
        f"History of a queued run (local mode, capacity 2 held by one run), at {args.wait[0]:.0f} s and "
        f"{args.wait[1]:.0f} s of waiting:",
        "",
        "| runs queued | events at W1 | events at W2 | events per hour of waiting |",
        "|---|---|---|---|",
        *(
            f"| {n} | {e['events_at_first']:.1f} | {e['events_at_second']:.1f} | {e['events_per_hour']:.1f} |"
            for n, e in events.items()
        ),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
