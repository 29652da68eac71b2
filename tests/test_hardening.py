"""Duplicates, concurrency, faults and aborts, proven in local mode: the synthesized workflow and
rules, the real handlers, the local SageMaker (with injected faults)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local.harness import LocalPipeline
from tools.dataset import prepare, upload

pytestmark = pytest.mark.e2e

SMALL = {
    "max_training_jobs": 2,
    "max_parallel_jobs": 2,
    "epochs": 1,
    "ranges": {"mini_batch_size": {"min": 8, "max": 16}},
}


def prepared(small_images: Path, tmp: Path, name: str, tuning: dict[str, Any] | None = None) -> Path:
    return prepare(small_images, tmp / name, tuning=tuning or SMALL, progress=False).root


@pytest.fixture
def pipeline(local_app, tmp_path):
    outdir, prefix = local_app
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as p:
        yield p


def start(pipeline: LocalPipeline, root: Path, name: str) -> tuple[dict[str, Any], str]:
    put = upload(root, pipeline.client("s3"), pipeline.deployed.datasets_bucket, name, progress=False)
    event = pipeline.object_created_event(f"datasets/{name}/manifest.json", put)
    execution = pipeline.deliver(event)
    assert execution is not None
    return event, execution


def creates(pipeline: LocalPipeline) -> list[str]:
    return [
        p["HyperParameterTuningJobName"]
        for op, p in pipeline.sagemaker_service.requests
        if op == "CreateHyperParameterTuningJob"
    ]


def packages(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    sm = pipeline.client("sagemaker")
    return sm.list_model_packages(ModelPackageGroupName=pipeline.deployed.model_package_group)[
        "ModelPackageSummaryList"
    ]


# ---------------------------------------------------------------------- duplicates and concurrency


def test_the_same_event_three_times_starts_one_set_of_tuning_jobs(pipeline, small_images, tmp_path) -> None:
    event, first = start(pipeline, prepared(small_images, tmp_path, "d"), "dup")
    executions = [first, pipeline.deliver(event), pipeline.deliver(event)]
    results = [pipeline.wait(e, timeout=300) for e in executions]
    assert [r["status"] for r in results] == ["SUCCEEDED"] * 3
    assert len(pipeline.sagemaker_service.tuning_jobs) == 1  # one set of jobs, one bill
    assert len(creates(pipeline)) == 3  # two of them answered ResourceInUse
    assert len(packages(pipeline)) == 1  # registration is idempotent per run (ClientToken)


def test_a_failing_duplicate_delivery_stops_none_of_the_first_executions_jobs(pipeline, small_images, tmp_path) -> None:
    tuning = {**SMALL, "max_training_jobs": 2, "max_parallel_jobs": 2, "epochs": 25}
    event, first = start(pipeline, prepared(small_images, tmp_path, "own", tuning), "owned")
    service = pipeline.sagemaker_service
    deadline = time.time() + 60
    while not service.tuning_jobs and time.time() < deadline:
        time.sleep(0.1)
    (job,) = service.tuning_jobs.values()
    # The duplicate's StartTuning meets ResourceInUse and asks who owns the job: that call fails
    # (not a transient error), so the duplicate execution fails and both cleanups run for it.
    service.inject("ListTags", ("ValidationException", 400))
    duplicate = pipeline.deliver(event)
    assert pipeline.wait(duplicate, timeout=120)["status"] == "FAILED"
    assert job.status == "InProgress", "inconclusive: the first run ended before the duplicate's cleanup"
    (cleanup,) = [result for rule, result in pipeline.target_results if rule.startswith("ExecutionEnded")]
    assert cleanup["stopped"] == []
    assert pipeline.wait(first, timeout=300)["status"] == "SUCCEEDED"
    assert job.status == "Completed" and all(t.status == "Completed" for t in job.jobs)
    assert len(packages(pipeline)) == 1


def test_a_new_version_of_the_same_dataset_is_a_new_run(pipeline, small_images, tmp_path) -> None:
    root = prepared(small_images, tmp_path, "v")
    _, first = start(pipeline, root, "versions")
    assert pipeline.wait(first, timeout=300)["status"] == "SUCCEEDED"
    _, second = start(pipeline, root, "versions")
    assert pipeline.wait(second, timeout=300)["status"] == "SUCCEEDED"
    assert len(pipeline.sagemaker_service.tuning_jobs) == 2
    assert [p["ModelPackageVersion"] for p in packages(pipeline)] == [1, 2]


def test_twenty_datasets_at_once_make_twenty_complete_runs(pipeline, small_images, tmp_path) -> None:
    roots = {
        f"ds{i:02d}": prepared(
            small_images, tmp_path, f"ds{i:02d}", {**SMALL, "max_training_jobs": 1, "max_parallel_jobs": 1}
        )
        for i in range(20)
    }
    started: dict[str, str] = {}
    lock = threading.Lock()

    def go(name: str) -> None:
        _, execution = start(pipeline, roots[name], name)
        with lock:
            started[name] = execution

    threads = [threading.Thread(target=go, args=(n,)) for n in roots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = {name: pipeline.wait(arn, timeout=600) for name, arn in started.items()}
    assert {r["status"] for r in results.values()} == {"SUCCEEDED"}
    # None lost, none mixed up: each run registered its own dataset's model.
    sm = pipeline.client("sagemaker")
    uris = sorted(
        sm.describe_model_package(ModelPackageName=p["ModelPackageArn"])["CustomerMetadataProperties"]["dataset_uri"]
        for p in packages(pipeline)
    )
    assert uris == sorted(f"s3://{pipeline.deployed.datasets_bucket}/datasets/{n}/" for n in roots)


# ---------------------------------------------------------------------- faults


def test_throttling_and_5xx_are_retried_until_the_run_completes(pipeline, small_images, tmp_path) -> None:
    service = pipeline.sagemaker_service
    # 5 failures exhaust botocore's own retries (standard mode, 5 attempts): the Lambda fails with
    # TransientAwsError and the workflow's Retry runs it again, where 2 more failures are absorbed.
    service.inject(
        "CreateHyperParameterTuningJob",
        *[("ThrottlingException", 400)] * 5,
        ("ThrottlingException", 400),
        ("ServiceUnavailable", 503),
    )
    service.inject("DescribeHyperParameterTuningJob", ("InternalFailure", 500), ("ThrottlingException", 400))
    _, execution = start(pipeline, prepared(small_images, tmp_path, "t"), "throttled")
    result = pipeline.wait(execution, timeout=300)
    assert result["status"] == "SUCCEEDED"
    assert not service.faults["CreateHyperParameterTuningJob"] and not service.faults["DescribeHyperParameterTuningJob"]
    history = pipeline.client("stepfunctions").get_execution_history(executionArn=execution, maxResults=1000)["events"]
    failed = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failed == ["TransientAwsError"]  # once, then the workflow's Retry succeeded
    assert len(packages(pipeline)) == 1


def test_the_gpu_quota_error_fails_fast_and_names_the_quota(pipeline, small_images, tmp_path) -> None:
    pipeline.sagemaker_service.inject(
        "CreateHyperParameterTuningJob",
        ("ResourceLimitExceeded", 400),
    )
    _, execution = start(pipeline, prepared(small_images, tmp_path, "q"), "quota")
    result = pipeline.wait(execution, timeout=120)
    (note,) = pipeline.notifications()
    assert result["status"] == "FAILED"
    assert note["subject"] == "Tuning failed: quota (QuotaExceeded)"
    assert "request an increase of 'ml.g4dn.xlarge for training job usage'" in note["message"]
    assert not pipeline.sagemaker_service.tuning_jobs


def test_when_some_training_jobs_fail_the_best_of_the_rest_is_registered(pipeline, small_images, tmp_path) -> None:
    pipeline.sagemaker_service.training_faults.append(
        (lambda hp: hp.get("optimizer") in ("sgd", "nag"), "CUDA error: out of memory")
    )
    tuning = {**SMALL, "max_training_jobs": 6}
    _, execution = start(pipeline, prepared(small_images, tmp_path, "p", tuning), "partial")
    result = pipeline.wait(execution, timeout=300)
    assert result["status"] == "SUCCEEDED"
    jobs = list(pipeline.sagemaker_service.training_jobs.values())
    assert {j.status for j in jobs if j.definition.name in ("sgd", "nag")} <= {"Failed"}
    (package,) = packages(pipeline)
    meta = pipeline.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert meta["optimizer"] in ("adam", "rmsprop")


def test_when_every_training_job_fails_the_notification_says_why(pipeline, small_images, tmp_path) -> None:
    pipeline.sagemaker_service.training_faults.append((lambda hp: True, "CUDA error: out of memory"))
    _, execution = start(pipeline, prepared(small_images, tmp_path, "f"), "allfail")
    result = pipeline.wait(execution, timeout=300)
    (note,) = pipeline.notifications()
    assert result["status"] == "FAILED"
    assert note["subject"] == "Tuning failed: allfail (TuningFailed)"
    assert "All training jobs failed. AlgorithmError: CUDA error: out of memory" in note["message"]
    assert "read each training job's FailureReason" in note["message"]


def test_an_evaluation_that_cannot_start_still_registers_the_paid_tuning_and_says_why(
    pipeline, small_images, tmp_path
) -> None:
    root = prepare(small_images, tmp_path / "e", tuning=SMALL, progress=False, test_fraction=0.25).root
    pipeline.sagemaker_service.inject("CreateTransformJob", ("ResourceLimitExceeded", 400))
    _, execution = start(pipeline, root, "evalquota")
    result = pipeline.wait(execution, timeout=300)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    (package,) = packages(pipeline)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    (note,) = pipeline.notifications()
    assert (
        "Test accuracy: the held-out evaluation failed (QuotaExceeded: SageMaker refused to start the test transform"
        in (note["message"])
    )
    assert "'ml.m5.xlarge for transform job usage', or set another evaluation_instance_type" in note["message"]
    assert "Why: approval.mode is manual" in note["message"]  # the local deployment's; auto: tests/test_approval.py
    assert not pipeline.sagemaker_service.models  # the model made for the transform is gone
    assert not pipeline.sagemaker_service.transform_jobs


# ---------------------------------------------------------------------- aborts


def test_a_failure_handler_that_fails_too_still_gives_back_the_slots_and_says_so(
    pipeline, small_images, tmp_path
) -> None:
    # PollTuning is refused (AccessDenied is not retried), then so is HandleFailure's look at the
    # job it would stop: the plain notice is published, the slots given back, and the job is
    # stopped by StopOrphans when the execution ends, not left training.
    service = pipeline.sagemaker_service
    service.inject("DescribeHyperParameterTuningJob", ("AccessDeniedException", 400), ("AccessDeniedException", 400))
    tuning = {**SMALL, "max_training_jobs": 8, "max_parallel_jobs": 2, "epochs": 30}  # still training at the end
    _, execution = start(pipeline, prepared(small_images, tmp_path, "h", tuning), "handler")
    result = pipeline.wait(execution, timeout=300)
    assert result["status"] == "FAILED"
    (note,) = pipeline.notifications()
    assert note["subject"] == "Tuning failed (the failure notice could not be composed)"
    # A ClientError no classifier renamed reaches Step Functions under its Python type's name.
    assert note["message"].startswith("The run failed with ClientError, and composing its failure notice")
    assert "failed too, with ClientError. The tuning and transform jobs" in note["message"]
    (job,) = service.tuning_jobs.values()
    (rule, cleaned) = pipeline.target_results[-1]
    assert rule.startswith("ExecutionEnded") and cleaned["stopped"] == [job.name]
    deadline = time.time() + 60
    while job.status not in ("Stopped", "Completed") and time.time() < deadline:
        time.sleep(0.2)
    assert job.status == "Stopped"
    # Slots whose jobs still ran were kept at the release (instances in use are not free); once
    # the jobs are stopped, the reaper's next round gives them back and nothing is left behind.
    pipeline.tick()
    items = pipeline.client("dynamodb").scan(TableName=pipeline.deployed.table)["Items"]
    pools = [i for i in items if i["sk"]["S"] == "#pool"]
    assert pools and all(i["held"]["N"] == "0" for i in pools)
    assert not [i for i in items if i["sk"]["S"].startswith("T#")]  # no ticket left in the queue


def test_an_aborted_execution_leaves_no_tuning_job_running(pipeline, small_images, tmp_path) -> None:
    tuning = {**SMALL, "max_training_jobs": 8, "max_parallel_jobs": 2, "epochs": 30}
    _, execution = start(pipeline, prepared(small_images, tmp_path, "a", tuning), "aborted")
    service = pipeline.sagemaker_service
    deadline = time.time() + 60
    while (
        not any(j.status == "InProgress" for t in service.tuning_jobs.values() for j in t.jobs)
        and time.time() < deadline
    ):
        time.sleep(0.2)
    (job,) = service.tuning_jobs.values()
    assert job.status == "InProgress"
    assert pipeline.abort(execution)["status"] == "ABORTED"
    (rule, result) = pipeline.target_results[-1]
    assert rule.startswith("ExecutionEnded") and result["stopped"] == [job.name]
    deadline = time.time() + 60
    while job.status != "Stopped" and time.time() < deadline:
        time.sleep(0.2)
    assert job.status == "Stopped"
    assert all(t.status in ("Stopped", "Completed") for t in job.jobs)
    assert len(job.jobs) < 8


@pytest.mark.standin
def test_the_local_sagemaker_rejects_what_sagemaker_would(pipeline) -> None:
    sm = pipeline.client("sagemaker")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match=r"ValidationException.*HyperParameterTuningJobName.*does not match pattern"):
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="bad_name!")
