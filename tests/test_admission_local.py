"""Many runs, one account: admission, the queue, the reaper and the ledger in local mode, against
a local account with a quota of 2 GPUs of the type (the synthesized app, the real handlers,
moto's DynamoDB, the local SageMaker refusing what would exceed its quota).

The deployment here is the `local` environment with a capacity of 2 training slots and a price of
$3,600 an hour ($1 a billed second), so the ledger's figures are dollars a test can count.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local.harness import LocalPipeline
from tests.conftest import cdk_context
from tools.dataset import prepare, upload
from tools.synth import synthesize

pytestmark = pytest.mark.e2e

GPU = "ml.g4dn.xlarge"
GPU_QUOTA = f"{GPU} for training job usage"  # the quota's name in Service Quotas
ONE_AT_A_TIME = {
    "max_training_jobs": 1,
    "max_parallel_jobs": 1,
    "epochs": 1,
    "ranges": {"mini_batch_size": {"min": 8, "max": 16}},
}
PRICE_PER_SECOND = Decimal(1)


def governed(capacity: int) -> dict[str, Any]:
    tuning = cdk_context()["environments"]["local"]["tuning"]
    return {
        "capacity": {GPU: capacity, "ml.m5.xlarge": 1},
        "monthly_budget_usd": 10_000_000,
        "tuning": {**tuning, "price_per_hour_usd": 3600, "max_cost_usd": 100_000},
    }


@pytest.fixture(scope="module")
def app_of_capacity_2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    outdir = tmp_path_factory.mktemp("governed-cdk.out")
    return outdir, synthesize(outdir, "local", governed(2))


def start(pipeline: LocalPipeline, root: Path, name: str) -> str:
    put = upload(root, pipeline.client("s3"), pipeline.deployed.datasets_bucket, name, progress=False)
    execution = pipeline.deliver(pipeline.object_created_event(f"datasets/{name}/manifest.json", put))
    assert execution is not None
    return execution


def governance_items(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    pages = pipeline.client("dynamodb").get_paginator("scan").paginate(TableName=pipeline.deployed.table)
    return [item for page in pages for item in page["Items"]]


def left_behind(pipeline: LocalPipeline) -> dict[str, Any]:
    """Tickets, slots held and unsettled reservations still in the table."""
    items = governance_items(pipeline)
    return {
        "tickets": [i["sk"]["S"] for i in items if i["sk"]["S"].startswith("T#")],
        "held": {i["pk"]["S"]: i["held"]["N"] for i in items if i["sk"]["S"] == "#pool" and i["held"]["N"] != "0"},
        "reserved": [i["sk"]["S"] for i in items if i["sk"]["S"].startswith("RUN#") and i["state"]["S"] != "settled"],
    }


def billed_by_sagemaker(pipeline: LocalPipeline, output: dict[str, Any]) -> Decimal:
    """What the local SageMaker billed the run: BillableTimeInSeconds of its training jobs, at $1 a second."""
    sm = pipeline.client("sagemaker")
    seconds = sum(
        sm.describe_training_job(TrainingJobName=s["TrainingJobName"])["BillableTimeInSeconds"]
        for name in output["tuning"]["job_names"]
        for s in sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
            "TrainingJobSummaries"
        ]
    )
    return Decimal(seconds) * PRICE_PER_SECOND


def month_total(pipeline: LocalPipeline) -> dict[str, Decimal]:
    (total,) = [i for i in governance_items(pipeline) if i["sk"]["S"] == "#total"]
    return {k: Decimal(total[k]["N"]) for k in ("billed", "reserved", "committed")}


def test_twenty_uploads_share_two_gpus_in_arrival_order_and_leave_nothing_behind(
    app_of_capacity_2, small_images, tmp_path
) -> None:
    outdir, prefix = app_of_capacity_2
    names = [f"ds{i:02d}" for i in range(20)]
    roots = {n: prepare(small_images, tmp_path / n, tuning=ONE_AT_A_TIME, progress=False).root for n in names}
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl", quotas={GPU_QUOTA: 2}) as pipeline:
        executions = {}
        for name in names:  # uploaded one after another, within a second or two: arrival order is this order
            executions[name] = start(pipeline, roots[name], name)
            time.sleep(0.01)
        results = {name: pipeline.wait(arn, timeout=900) for name, arn in executions.items()}
        assert [r["status"] for r in results.values()] == ["SUCCEEDED"] * 20
        outputs = {name: json.loads(r["output"]) for name, r in results.items()}

        # At no moment more than the quota, as the local SageMaker measured it; and both GPUs used.
        assert pipeline.quotas.peak_running[GPU_QUOTA] == 2
        refused = [p for op, p in pipeline.sagemaker_service.requests if op == "CreateHyperParameterTuningJob"]
        assert len(refused) == 20  # one create per run: none was refused and retried
        # First come, first served: each run was admitted no earlier than the one uploaded before it.
        admitted = [outputs[n]["admission"]["training"]["admitted_at"] for n in names]
        assert admitted == sorted(admitted)
        waited = [outputs[n]["admission"]["training"]["waited_seconds"] for n in names]
        assert waited[0] < 1 and max(waited) > 1  # the first ran at once; later ones queued
        queued = next(n for n in names if outputs[n]["admission"]["training"]["waited_seconds"] > 1)
        (notice,) = [m for m in pipeline.notifications() if f" {queued} " in m["subject"] + " "]
        assert (
            "Training slots: queued " in notice["message"]
            and "until 1 ml.g4dn.xlarge slot of 2 was free" in notice["message"]
        )

        # Nothing held, nothing reserved; the month's ledger is what SageMaker billed, run by run.
        assert left_behind(pipeline) == {"tickets": [], "held": {}, "reserved": []}
        entries = {
            i["run_id"]["S"]: Decimal(i["billed"]["N"])
            for i in governance_items(pipeline)
            if i["sk"]["S"].startswith("RUN#")
        }
        expected = {outputs[n]["run"]["run_id"]: billed_by_sagemaker(pipeline, outputs[n]) for n in names}
        assert entries == expected and all(v > 0 for v in expected.values())
        assert month_total(pipeline) == {
            "billed": sum(expected.values()),
            "reserved": 0,
            "committed": sum(expected.values()),
        }


def wait_for(predicate: Any, timeout: float = 120, pipeline: LocalPipeline | None = None) -> None:
    """Until `predicate()`; with `pipeline`, its scheduled rules fire every half second meanwhile
    (the reaper's five minutes, shortened)."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.5 if pipeline else 0.1)
        if pipeline:
            pipeline.tick()


def test_aborted_queued_aborted_training_and_crashed_runs_leave_no_lease(
    app_of_capacity_2, small_images, tmp_path
) -> None:
    outdir, prefix = app_of_capacity_2
    long = {**ONE_AT_A_TIME, "max_parallel_jobs": 2, "max_training_jobs": 2, "epochs": 400}
    short = {**ONE_AT_A_TIME, "max_parallel_jobs": 2, "max_training_jobs": 2}
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl", quotas={GPU_QUOTA: 2}) as pipeline:
        service = pipeline.sagemaker_service
        training = start(pipeline, prepare(small_images, tmp_path / "a", tuning=long, progress=False).root, "a")
        wait_for(lambda: any(t.status == "InProgress" for j in service.tuning_jobs.values() for t in j.jobs))
        crashing = start(pipeline, prepare(small_images, tmp_path / "b", tuning=short, progress=False).root, "b")
        queued = start(pipeline, prepare(small_images, tmp_path / "c", tuning=short, progress=False).root, "c")
        wait_for(lambda: len(left_behind(pipeline)["tickets"]) == 3)
        assert pipeline.abort(queued)["status"] == "ABORTED"  # aborted while queued
        assert len(left_behind(pipeline)["tickets"]) == 2
        assert pipeline.abort(training)["status"] == "ABORTED"  # aborted while training
        # Its slots come back once its jobs have stopped (the reaper finds them so): b is admitted.
        (a_job,) = service.tuning_jobs.values()
        assert left_behind(pipeline)["held"] or a_job.status == "Stopped"
        wait_for(lambda: any(name.startswith("b-") for name in service.tuning_jobs), pipeline=pipeline)
        assert a_job.status == "Stopped"  # never two runs' GPUs at once: the quota refused nothing
        # b's next poll crashes (not a transient error): its failure path gives the slots back.
        service.inject("DescribeHyperParameterTuningJob", ("ValidationException", 400))
        assert pipeline.wait(crashing, timeout=300)["status"] == "FAILED"
        notices = pipeline.notifications()
        assert any(m["subject"].startswith("Tuning failed: b ") for m in notices)
        assert not any("QuotaExceeded" in m["message"] for m in notices)  # never refused by the quota
        wait_for(lambda: left_behind(pipeline) == {"tickets": [], "held": {}, "reserved": []}, pipeline=pipeline)
        assert month_total(pipeline)["reserved"] == 0


def test_a_lost_end_event_is_found_by_the_reaper_and_the_queue_moves_on(
    app_of_capacity_2, small_images, tmp_path
) -> None:
    """The worst outcome is a lease nobody gives back: the queue would wait forever."""
    outdir, prefix = app_of_capacity_2
    long = {**ONE_AT_A_TIME, "max_parallel_jobs": 2, "max_training_jobs": 2, "epochs": 400}
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl", quotas={GPU_QUOTA: 2}) as pipeline:
        service = pipeline.sagemaker_service
        holder = start(pipeline, prepare(small_images, tmp_path / "a", tuning=long, progress=False).root, "a")
        wait_for(lambda: any(t.status == "InProgress" for j in service.tuning_jobs.values() for t in j.jobs))
        waiting = start(pipeline, prepare(small_images, tmp_path / "b", tuning=ONE_AT_A_TIME, progress=False).root, "b")
        wait_for(lambda: len(left_behind(pipeline)["tickets"]) == 2)
        # Stopped without its end event reaching the cleanup (the event lost).
        pipeline.stop(holder, error="Lost")
        time.sleep(2)
        assert len(left_behind(pipeline)["tickets"]) == 2  # nothing gave the slots back
        (reaped,) = pipeline.tick()
        assert reaped["reaped"] == [holder]
        assert [r["stopped"] for r in reaped["results"]] == [[next(iter(service.tuning_jobs))]]
        sfn = pipeline.client("stepfunctions")
        wait_for(lambda: sfn.describe_execution(executionArn=waiting)["status"] != "RUNNING", 300, pipeline)
        assert pipeline.wait(waiting)["status"] == "SUCCEEDED"
        assert left_behind(pipeline) == {"tickets": [], "held": {}, "reserved": []}


def test_a_capacity_above_the_quota_is_admitted_against_the_quota_and_the_notice_says_so(
    small_images, tmp_path, tmp_path_factory
) -> None:
    outdir = tmp_path_factory.mktemp("capacity-4")
    prefix = synthesize(outdir, "local", governed(4))
    runs = {**ONE_AT_A_TIME, "max_parallel_jobs": 2, "max_training_jobs": 2}
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl", quotas={GPU_QUOTA: 2}) as pipeline:
        executions = [
            start(pipeline, prepare(small_images, tmp_path / n, tuning=runs, progress=False).root, n)
            for n in ("x", "y")
        ]
        results = [pipeline.wait(e, timeout=600) for e in executions]
        assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
        assert pipeline.quotas.peak_running[GPU_QUOTA] == 2  # one run at a time: 2 slots each, quota 2
        second = json.loads(results[1]["output"])["admission"]["training"]
        assert second["limit"] == 2 and second["waited_seconds"] > 0
        note = "The capacity for ml.g4dn.xlarge, 4, is above the account's quota 'ml.g4dn.xlarge for training job usage', 2"
        assert all(note in m["message"] for m in pipeline.notifications())
