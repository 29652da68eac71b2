"""Handlers: the exact requests that reach SageMaker (botocore Stubber), S3 behaviour (moto),
and every error path with the message a user sees."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from handlers.choose_best import best_of_run
from handlers.handle_failure import stop_running, uploaded_dataset
from handlers.poll_tuning import poll
from handlers.register_model import register
from handlers.start_tuning import start_tuning
from local.api_model import request_errors
from pipeline.aws.errors import NoSuccessfulTrainingJob, QuotaExceeded, TransientAwsError
from pipeline.aws.image_uri import training_image_uri
from pipeline.aws.s3_layout import previous_run_key
from pipeline.contract import BestJob, Run, Tested, Tuning
from pipeline.dataset.validation import validate_dataset
from pipeline.messages import failure_message
from pipeline.settings.keys import Approval
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.request import Destinations, build_tuning_requests
from tests.conftest import fixture_json

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sm"
ARTIFACTS = "artifacts-bucket"
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Workflow:first-delivery"
OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:Workflow:second-delivery"


def sagemaker_stub() -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def sample_run(layout: str = "definitions", **settings: Any) -> Run:
    if layout == "job_per_optimizer":
        settings.setdefault("max_parallel_jobs", 4)  # one instance per optimizer at least
    s = dataclasses.replace(TuningSettings(), layout=layout, **settings)
    s.check("test")
    return Run.from_dict(
        {
            "run_id": "digits-0123456789",
            "dataset": {
                "bucket": "ds",
                "name": "digits",
                "manifest_key": "datasets/digits/manifest.json",
                "version_id": "v1",
                "uri": "s3://ds/datasets/digits/",
            },
            "data": {
                "format": "image",
                "num_classes": 10,
                "num_training_samples": 1437,
                "num_validation_samples": 360,
                "channels": [
                    {"name": c, "uri": f"s3://ds/datasets/digits/{c}/", "form": {"content_type": "application/x-image"}}
                    for c in ("train", "validation", "train_lst", "validation_lst")
                ],
            },
            "settings": s.to_dict(),
            "schedule": {"poll_seconds": 60, "max_tuning_seconds": 36000},
            "cost": {
                "worst_case_usd": 12.0,
                "price_per_hour_usd": 0.736,
                "instance_hours": 16.3,
                "basis": "on-demand",
                "budget_usd": None,
            },
        }
    )


def expected_requests(run: Run, parents: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    return build_tuning_requests(
        run.run_id,
        TuningSettings.from_mapping(run.settings.to_dict(), where="test"),
        run.data,
        Destinations(
            ROLE,
            training_image_uri(REGION),
            f"s3://{ARTIFACTS}/tuning/digits/{run.run_id}/",
            f"s3://{ARTIFACTS}/checkpoints/digits/{run.run_id}/",
            None,
        ),
        warm_start_parents=parents,
        tags=[
            {"Key": "tuning-pipeline:dataset", "Value": "digits"},
            {"Key": "tuning-pipeline:run", "Value": run.run_id},
            {"Key": "tuning-pipeline:execution", "Value": EXECUTION},
        ],
    )


# ---------------------------------------------------------------------- start tuning


@mock_aws
def test_start_sends_exactly_the_built_request_and_it_satisfies_the_api_model() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    run = sample_run()
    sm, stub = sagemaker_stub()
    (request,) = expected_requests(run)
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []
    stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:x"}, request)
    with stub:
        result = start_tuning(
            run, sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION
        )
    stub.assert_no_pending_responses()
    assert result.started == ("digits-0123456789",) and result.already_started == ()


@mock_aws
def test_a_repeated_event_finds_the_jobs_already_started_by_another_execution() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    run = sample_run(layout="job_per_optimizer")
    sm, stub = sagemaker_stub()
    for request in expected_requests(run):
        name = request["HyperParameterTuningJobName"]
        stub.add_client_error(
            "create_hyper_parameter_tuning_job", "ResourceInUse", "already exists", 400, expected_params=request
        )
        owned_by_response(stub, name, OTHER_EXECUTION if not name.endswith("-nag") else EXECUTION)
    with stub:
        result = start_tuning(
            run, sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION
        )
    # sgd, adam and rms were created by the first delivery; nag by this execution's own earlier
    # attempt (retried after a timeout), which makes it this execution's to stop.
    assert result.started == ("digits-0123456789-nag",)
    assert result.already_started == result.job_names[:3] and len(result.job_names) == 4


def owned_by_response(stub: Stubber, name: str, execution: str) -> None:
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}"
    stub.add_response(
        "describe_hyper_parameter_tuning_job", describe(name, "InProgress"), {"HyperParameterTuningJobName": name}
    )
    stub.add_response(
        "list_tags",
        {
            "Tags": [
                {"Key": "tuning-pipeline:run", "Value": "r"},
                {"Key": "tuning-pipeline:execution", "Value": execution},
            ]
        },
        {"ResourceArn": arn, "MaxResults": 50},
    )


@mock_aws
def test_the_gpu_quota_error_names_the_quota_and_the_fix() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    sm, stub = sagemaker_stub()
    stub.add_client_error(
        "create_hyper_parameter_tuning_job",
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g4dn.xlarge for training job usage' is 0 Instances",
        400,
    )
    with stub, pytest.raises(QuotaExceeded, match=r"request an increase of 'ml.g4dn.xlarge for training job usage'"):
        start_tuning(
            sample_run(), sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION
        )


@mock_aws
def test_a_spot_run_refused_by_the_quota_names_the_spot_quota() -> None:
    # Service Quotas lists spot training apart: "ml.g4dn.xlarge for spot training job usage"
    # (https://docs.aws.amazon.com/general/latest/gr/sagemaker.html, Service quotas).
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    sm, stub = sagemaker_stub()
    stub.add_client_error("create_hyper_parameter_tuning_job", "ResourceLimitExceeded", "limit is 0.", 400)
    with stub, pytest.raises(QuotaExceeded) as refused:
        start_tuning(
            sample_run(use_spot=True),
            sm,
            s3,
            role_arn=ROLE,
            bucket=ARTIFACTS,
            kms_key_arn=None,
            region=REGION,
            execution=EXECUTION,
        )
    assert "request an increase of 'ml.g4dn.xlarge for spot training job usage'" in str(refused.value)


@mock_aws
def test_a_start_that_fails_halfway_stops_the_jobs_it_created() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    run = sample_run(layout="job_per_optimizer")
    sm, stub = sagemaker_stub()
    sgd, adam, *_ = expected_requests(run)
    stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:x"}, sgd)
    stub.add_client_error("create_hyper_parameter_tuning_job", "ResourceLimitExceeded", "quota 1", 400)
    stub.add_response(
        "stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": sgd["HyperParameterTuningJobName"]}
    )
    with stub, pytest.raises(QuotaExceeded):
        start_tuning(run, sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION)
    stub.assert_no_pending_responses()  # the created job was stopped; adam was never created


@mock_aws
def test_throttling_becomes_the_error_the_workflow_retries() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    sm, stub = sagemaker_stub()
    stub.add_client_error("create_hyper_parameter_tuning_job", "ThrottlingException", "Rate exceeded", 400)
    with stub, pytest.raises(TransientAwsError, match="ThrottlingException"):
        start_tuning(
            sample_run(), sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION
        )


@mock_aws
def test_warm_start_uses_the_previous_run_of_the_same_dataset_and_layout() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    previous = {
        "run_id": "digits-aaaaaaaaaa",
        "layout": "job_per_optimizer",
        "tuning_jobs": [f"digits-aaaaaaaaaa-{c}" for c in ("sgd", "adam", "rms", "nag")],
    }
    s3.put_object(Bucket=ARTIFACTS, Key=previous_run_key("digits"), Body=json.dumps(previous).encode())
    run = sample_run(layout="job_per_optimizer", warm_start="previous")
    parents = {f"digits-0123456789-{c}": [f"digits-aaaaaaaaaa-{c}"] for c in ("sgd", "adam", "rms", "nag")}
    sm, stub = sagemaker_stub()
    for c in ("sgd", "adam", "rms", "nag"):
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            parent_description(f"digits-aaaaaaaaaa-{c}", "Completed", launched=8),
            {"HyperParameterTuningJobName": f"digits-aaaaaaaaaa-{c}"},
        )
    for request in expected_requests(run, parents):
        assert request["WarmStartConfig"]["ParentHyperParameterTuningJobs"][0][
            "HyperParameterTuningJobName"
        ].startswith("digits-aaaaaaaaaa-")
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:x"}, request)
    with stub:
        start_tuning(run, sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION)
    stub.assert_no_pending_responses()


def parent_description(name: str, status: str, launched: int, run: Run | None = None) -> dict[str, Any]:
    """Last week's job of the same optimizer, as DescribeHyperParameterTuningJob tells it: the same
    search space, trained on the previous version of the dataset (another num_training_samples)."""
    run = run or sample_run(layout="job_per_optimizer", warm_start="previous")
    (request,) = [r for r in expected_requests(run) if r["HyperParameterTuningJobName"].endswith(name[-4:])]
    definition = request["TrainingJobDefinition"]
    # SageMaker's Describe also shows the objective among the static hyperparameters.
    static = {
        **definition["StaticHyperParameters"],
        "num_training_samples": "1200",
        "_tuning_objective_metric": "validation:accuracy",
    }
    return {
        **describe(name, status, Completed=launched),
        "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": static},
    }


# The API reference (HyperParameterTuningJobWarmStartConfig): "All training jobs launched by parent
# hyperparameter tuning jobs and the new hyperparameter tuning jobs count against the limit of
# training jobs for the tuning job"; SageMaker endpoints and quotas: 750 training jobs per tuning job.
TRAINING_JOBS_PER_TUNING_JOB = 750


@mock_aws
def test_warm_start_leaves_out_unfinished_parents_and_parents_over_the_training_job_limit() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    codes = ("sgd", "adam", "rms", "nag")
    previous = {"run_id": "digits-aaaaaaaaaa", "layout": "job_per_optimizer", "tuning_jobs": []}
    previous["tuning_jobs"] = [f"digits-aaaaaaaaaa-{c}" for c in codes]
    s3.put_object(Bucket=ARTIFACTS, Key=previous_run_key("digits"), Body=json.dumps(previous).encode())
    run = sample_run(layout="job_per_optimizer", warm_start="previous", max_training_jobs=400)
    cold = expected_requests(run)
    room = {
        r["HyperParameterTuningJobName"].rsplit("-", 1)[1]: TRAINING_JOBS_PER_TUNING_JOB
        - r["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
        for r in cold
    }
    parents = {  # what each parent launched, and its status
        "sgd": ("InProgress", 10),  # not finished: left out
        "adam": ("Completed", room["adam"] + 1),  # one job over the limit: left out
        "rms": ("Stopped", 10),  # stopped is finished: kept
        "nag": ("Completed", room["nag"]),  # exactly at the limit: kept
    }
    sm, stub = sagemaker_stub()
    for c, (status, launched) in parents.items():
        name = f"digits-aaaaaaaaaa-{c}"
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            parent_description(name, status, launched, run),
            {"HyperParameterTuningJobName": name},
        )
    kept = {f"digits-0123456789-{c}": [f"digits-aaaaaaaaaa-{c}"] for c in ("rms", "nag")}
    for request in expected_requests(run, kept):
        stub.add_response("create_hyper_parameter_tuning_job", {"HyperParameterTuningJobArn": "arn:x"}, request)
    with stub:
        start_tuning(run, sm, s3, role_arn=ROLE, bucket=ARTIFACTS, kms_key_arn=None, region=REGION, execution=EXECUTION)
    stub.assert_no_pending_responses()
    warm = [r["HyperParameterTuningJobName"] for r in expected_requests(run, kept) if "WarmStartConfig" in r]
    assert warm == ["digits-0123456789-rms", "digits-0123456789-nag"]


# ---------------------------------------------------------------------- poll and choose


def describe(
    name: str, status: str, best: tuple[str, float, dict[str, str]] | None = None, **counters: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {"MaxParallelTrainingJobs": 2}},
        "HyperParameterTuningJobStatus": status,
        "CreationTime": NOW,
        "TrainingJobStatusCounters": {
            "Completed": 0,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
            **counters,
        },
        "ObjectiveStatusCounters": {"Succeeded": 0, "Pending": 0, "Failed": 0},
    }
    if best:
        job, value, hps = best
        out["BestTrainingJob"] = {
            "TrainingJobName": job,
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}",
            "CreationTime": NOW,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": hps,
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:accuracy", "Value": value},
        }
    return out


def test_poll_reports_in_progress_then_completed_in_a_few_fields() -> None:
    sm, stub = sagemaker_stub()
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        describe("a", "InProgress", InProgress=2),
        {"HyperParameterTuningJobName": "a"},
    )
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        describe("b", "Completed", ("b-001", 0.9, {}), Completed=3),
        {"HyperParameterTuningJobName": "b"},
    )
    with stub:
        result = poll(("a", "b"), sm)
    assert (result.status, result.failure_reason) == ("InProgress", "")  # a reason only for a failed run
    assert result.jobs[0] == {
        "name": "a",
        "status": "InProgress",
        "completed": 0,
        "in_progress": 2,
        "failed": 0,
        "stopped": 0,
        "has_best": False,
        "failure_reason": "",
    }


def test_poll_reports_failed_with_the_reason_when_no_job_has_a_best() -> None:
    sm, stub = sagemaker_stub()
    failed = describe("a", "Failed", NonRetryableError=4)
    failed["FailureReason"] = "All training jobs failed"
    stub.add_response("describe_hyper_parameter_tuning_job", failed, {"HyperParameterTuningJobName": "a"})
    with stub:
        result = poll(("a",), sm)
    assert result.status == "Failed"
    assert (
        result.failure_reason == "a: Failed (All training jobs failed; 0 completed, 4 failed, 0 stopped training jobs)"
    )


def test_one_failed_tuning_job_does_not_lose_the_best_of_the_others() -> None:
    sm, stub = sagemaker_stub()

    def sgd_failed_adam_completed() -> None:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            describe("r-sgd", "Failed", NonRetryableError=5),
            {"HyperParameterTuningJobName": "r-sgd"},
        )
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            describe("r-adam", "Completed", ("r-adam-003-abcdef12", 0.93, {"learning_rate": "0.01"}), Completed=5),
            {"HyperParameterTuningJobName": "r-adam"},
        )

    sgd_failed_adam_completed()
    with stub:
        completed = poll(("r-sgd", "r-adam"), sm)
    assert (completed.status, completed.failure_reason) == ("Completed", "")  # sgd's failure does not fail the run
    sgd_failed_adam_completed()
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": "r-adam-003-abcdef12",
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/r-adam-003-abcdef12",
            "ModelArtifacts": {"S3ModelArtifacts": "s3://a/tuning/r-adam-003-abcdef12/output/model.tar.gz"},
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "HyperParameters": {"optimizer": "adam", "learning_rate": "0.01"},
            "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": NOW,
            "BillableTimeInSeconds": 321,
        },
        {"TrainingJobName": "r-adam-003-abcdef12"},
    )
    with stub:
        best = best_of_run(("r-sgd", "r-adam"), sm)
    assert best.to_dict() == {
        "tuning_job_name": "r-adam",
        "training_job_name": "r-adam-003-abcdef12",
        "accuracy": 0.93,
        "hyperparameters": {"learning_rate": "0.01"},
        "definition_name": None,
        "optimizer": "adam",
        "model_data_url": "s3://a/tuning/r-adam-003-abcdef12/output/model.tar.gz",
        "training_image": "img:1",
        "billable_seconds": 321,
    }


def test_choose_best_explains_when_nothing_completed() -> None:
    sm, stub = sagemaker_stub()
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        describe("a", "Completed", Completed=0, NonRetryableError=3),
        {"HyperParameterTuningJobName": "a"},
    )
    with stub, pytest.raises(NoSuccessfulTrainingJob, match="no completed training job in a.*FailureReason"):
        best_of_run(("a",), sm)


# ---------------------------------------------------------------------- register


BEST = BestJob.from_dict(
    {
        "tuning_job_name": "digits-0123456789",
        "training_job_name": "digits-0123456789-004-abcdef12",
        "accuracy": 0.9731,
        "hyperparameters": {
            "learning_rate": "0.0123",
            "mini_batch_size": "64",
            "momentum": "0.9",
            "weight_decay": "1e-05",
        },
        "definition_name": "sgd",
        "optimizer": "sgd",
        "model_data_url": "s3://artifacts-bucket/tuning/digits/digits-0123456789/digits-0123456789-004-abcdef12/output/model.tar.gz",
        "training_image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
        "billable_seconds": 100,
    }
)


@mock_aws
@pytest.mark.parametrize(
    ("mode", "current", "expected", "tested"),
    [
        ("manual", None, "PendingManualApproval", None),
        ("auto", None, "Approved", None),
        ("auto", 0.99, "PendingManualApproval", None),
        # The held-out evaluation failed: no unbiased number, so a person decides.
        ("auto", None, "PendingManualApproval", Tested(status="Failed", failure_reason="t: Failed. x")),
    ],
)
def test_register_creates_a_versioned_package_that_satisfies_the_api_model(
    mode: str, current: float | None, expected: str, tested: Tested | None
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    run = sample_run(approval=Approval(mode=mode, threshold=0.95))
    tuning = Tuning.from_dict({"job_names": ["digits-0123456789"]})
    sm, stub = sagemaker_stub()
    if mode == "auto":
        listed = (
            []
            if current is None
            else [
                {
                    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
                    "ModelPackageName": "g",
                    "CreationTime": NOW,
                    "ModelPackageStatus": "Completed",
                }
            ]
        )
        stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": listed},
            {
                "ModelPackageGroupName": "g",
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
            },
        )
        if current is not None:
            stub.add_response(
                "describe_model_package",
                {
                    "ModelPackageName": "g",
                    "ModelPackageArn": listed[0]["ModelPackageArn"],
                    "CreationTime": NOW,
                    "ModelPackageStatus": "Completed",
                    "ModelPackageStatusDetails": {"ValidationStatuses": []},
                    "CustomerMetadataProperties": {
                        "validation_accuracy": str(current),
                        "dataset_uri": "s3://ds/datasets/digits/",
                    },
                },
                {"ModelPackageName": listed[0]["ModelPackageArn"]},
            )
    captured: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.update(params)

    sm.meta.events.register("provide-client-params.sagemaker.CreateModelPackage", capture)
    stub.add_response(
        "create_model_package",
        {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2"},
        {
            **{
                k: ANY
                for k in (
                    "ModelPackageGroupName",
                    "ModelPackageDescription",
                    "InferenceSpecification",
                    "ModelMetrics",
                    "ModelApprovalStatus",
                    "CustomerMetadataProperties",
                    "ClientToken",
                )
            }
        },
    )
    with stub:
        result = register(run, tuning, BEST, sm, s3, group="g", bucket=ARTIFACTS, tested=tested)
    assert result.approval_status == expected
    assert request_errors("sagemaker", "CreateModelPackage", captured) == []
    assert "ModelPackageName" not in captured and "Tags" not in captured
    assert captured["ClientToken"] == "digits-0123456789"
    assert captured["InferenceSpecification"]["Containers"] == [
        {"Image": BEST.training_image, "ModelDataUrl": BEST.model_data_url}
    ]
    assert captured["CustomerMetadataProperties"]["hp_learning_rate"] == "0.0123"
    assert captured["CustomerMetadataProperties"]["dataset_uri"] == "s3://ds/datasets/digits/"
    document = json.loads(
        s3.get_object(Bucket=ARTIFACTS, Key="metrics/digits/digits-0123456789/metrics.json")["Body"].read()
    )
    assert document["validation_accuracy"] == 0.9731
    assert document["hyperparameters"] == BEST.hyperparameters
    assert captured["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == result.metrics_uri
    latest = json.loads(s3.get_object(Bucket=ARTIFACTS, Key=previous_run_key("digits"))["Body"].read())
    # the run's record, for this dataset's next run and similar datasets' (tuning/history.py)
    assert latest == {
        "dataset": "digits",
        "run_id": "digits-0123456789",
        "layout": "definitions",
        "tuning_jobs": ["digits-0123456789"],
        "num_classes": 10,
        "num_training_samples": 1437,
        "image_shape": "3,224,224",
    }
    # a definitions run can be no run's warm-start parent: it is not indexed for similar datasets
    assert s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="runs/_classes/")["KeyCount"] == 0


# ---------------------------------------------------------------------- failure path


@pytest.mark.parametrize(
    ("key", "subject"),
    [
        ("datasets/fleurs-été/manifest.json", "Tuning failed: fleurs-ete (DatasetError)"),
        ("datasets/猫/manifest.json", "Tuning failed: ? (DatasetError)"),
        ("datasets/a\nb/manifest.json", "Tuning failed: a b (DatasetError)"),
    ],
)
def test_a_failure_subject_is_ascii_whatever_the_uploaded_key(key: str, subject: str) -> None:
    event = {"detail": {"bucket": {"name": "ds"}, "object": {"key": key}}}
    name, uri = uploaded_dataset(event)
    note = failure_message(
        {"Error": "DatasetError", "Cause": "bad"},
        run_id=None,
        dataset_name=name,
        dataset_uri=uri,
        stopped=[],
        region=REGION,
    )
    assert note.subject == subject
    assert note.subject.isascii() and len(note.subject) <= 99


def test_failure_stops_only_the_jobs_still_running() -> None:
    sm, stub = sagemaker_stub()
    stub.add_response(
        "describe_hyper_parameter_tuning_job", describe("a", "InProgress"), {"HyperParameterTuningJobName": "a"}
    )
    stub.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": "a"})
    stub.add_response(
        "describe_hyper_parameter_tuning_job", describe("b", "Completed"), {"HyperParameterTuningJobName": "b"}
    )
    with stub:
        assert stop_running(("a", "b"), sm) == ["a"]
    stub.assert_no_pending_responses()


def test_failure_message_says_what_failed_why_and_what_to_do() -> None:
    cause = json.dumps({"errorType": "QuotaExceeded", "errorMessage": "SageMaker refused ... request an increase"})
    run = sample_run()
    note = failure_message(
        {"Error": "QuotaExceeded", "Cause": cause},
        run_id=run.run_id,
        dataset_name=run.dataset.name,
        dataset_uri=run.dataset.uri,
        stopped=["digits-0123456789"],
        region=REGION,
    )
    assert note.subject == "Tuning failed: digits (QuotaExceeded)"
    assert "Why: SageMaker refused ... request an increase" in note.message
    assert "What to do: Raise the quota" in note.message
    assert "Stopped tuning jobs so no GPU keeps running: digits-0123456789" in note.message


def test_failure_before_a_run_exists_names_the_upload() -> None:
    event = fixture_json("manifest_created_event.json")
    assert uploaded_dataset(event) == (
        "flowers",
        "s3://ic-tuning-dev-datasets-123456789012-us-east-1/datasets/flowers/",
    )


# ---------------------------------------------------------------------- validation (moto S3)


@mock_aws
def test_a_valid_dataset_gives_a_small_run_descriptor() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    event = fixture_json("manifest_created_event.json")
    bucket = event["detail"]["bucket"]["name"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for split, n in (("train", 30), ("validation", 9)):
        lines = []
        for i in range(n):
            s3.put_object(
                Bucket=bucket, Key=f"datasets/flowers/{split}/c{i % 3}/{i}.jpg", Body=f"jpeg {split} {i}".encode()
            )
            lines.append(f"{i}\t{i % 3}\tc{i % 3}/{i}.jpg")
        s3.put_object(Bucket=bucket, Key=f"datasets/flowers/{split}_lst/{split}.lst", Body="\n".join(lines).encode())
    manifest = {"format": "image", "tuning": {"max_training_jobs": 6, "ranges": {"mini_batch_size": {"min": 4}}}}
    put = s3.put_object(Bucket=bucket, Key="datasets/flowers/manifest.json", Body=json.dumps(manifest).encode())
    event["detail"]["object"]["version-id"] = put["VersionId"]
    run = validate_dataset(event, TuningSettings().to_dict(), s3)
    assert run.data.num_classes == 3
    assert run.data.num_training_samples == 30
    assert run.settings.max_training_jobs == 6
    assert run.settings.range_for("mini_batch_size").min_value == 4
    assert run.dataset.version_id == put["VersionId"]
    assert Run.from_dict(run.to_dict()) == run  # the wire form loses nothing
    assert len(json.dumps(run.to_dict())) < 8 * 1024  # references, not data: far below the 256 KiB state limit


def test_poll_emits_jobs_in_flight_as_embedded_metrics(capsys, monkeypatch) -> None:
    from handlers import poll_tuning

    sm, stub = sagemaker_stub()
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        describe("a", "InProgress", InProgress=2),
        {"HyperParameterTuningJobName": "a"},
    )
    monkeypatch.setattr(poll_tuning.clients, "client", lambda service: sm)

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "poll", 128, "id"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:poll"

    with stub:
        poll_tuning.handler({"run_id": "r", "tuning": {"job_names": ["a"]}}, Context())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    (metric_line,) = emf
    assert metric_line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ImageClassificationTuning"
    assert metric_line["TuningJobsInFlight"] == [1.0]
    assert metric_line["TrainingJobsInProgress"] == [2.0]
    assert all(line.get("run_id") == "r" for line in lines if "message" in line)
