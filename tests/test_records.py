"""What a run leaves for people: notifications, registry metadata, the metrics document, the
status summary, and who owns which job. Expected texts are written out in full: a changed word,
number or field is a changed message.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.handle_failure import stop_running, uploaded_dataset
from handlers.start_tuning import warm_start_parents
from handlers.stop_orphans import run_of_execution
from pipeline.aws.errors import error_code, error_message, is_transient, quota_message
from pipeline.aws.tags import owned_by, owner
from pipeline.contract import (
    BestJob,
    Bill,
    Channel,
    Cost,
    Data,
    DatasetRef,
    Notification,
    Registered,
    Run,
    Schedule,
    Tested,
    TestSplit,
    Tuning,
)
from pipeline.evaluation.best_job import Best, job_summary, optimizer_of
from pipeline.evaluation.registry import customer_metadata, metadata_safe, metrics_document
from pipeline.messages import failure_message, subject_safe, success_message
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import run_id
from tests.fakes import Fake
from tests.sample_request import client_error, facts

RUN = Run(
    run_id="digits-0123456789",
    dataset=DatasetRef(bucket="ds", name="digits", manifest_key="datasets/digits/manifest.json", version_id="v7"),
    data=facts("image", 10, 1437, {"train": "s3://ds/datasets/digits/train/"}, "application/x-image"),
    settings=TuningSettings(layout="definitions", strategy="Bayesian"),
    schedule=Schedule(poll_seconds=60, max_tuning_seconds=36000),
    cost=Cost(
        worst_case_usd=29.44,
        price_per_hour_usd=0.736,
        instance_hours=40.0,
        basis="us-east-1 list price of 2026-11-28",
        budget_usd=50.0,
    ),
)
BEST_WIRE: dict[str, Any] = {
    "tuning_job_name": "digits-0123456789",
    "training_job_name": "digits-0123456789-004-abcdef12",
    "accuracy": 0.97314,
    "hyperparameters": {"mini_batch_size": "64", "learning_rate": "0.0123"},
    "definition_name": "sgd",
    "optimizer": "sgd",
    "model_data_url": "s3://art/tuning/digits/r/digits-0123456789-004-abcdef12/output/model.tar.gz",
    "training_image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
    "billable_seconds": 300,
    "run_billable_seconds": 5400,
    "run_estimated_cost_usd": 1.1,
    "run_billed_jobs": 20,
    "run_training_jobs": 20,
}
BEST = BestJob.from_dict(BEST_WIRE)
REGISTERED = Registered(
    model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3",
    approval_status="PendingManualApproval",
    metrics_uri="s3://art/metrics/digits/digits-0123456789/metrics.json",
)


def failure(error: dict[str, Any], run: Run | None, stopped: list[str]) -> Notification:
    return failure_message(
        error,
        run_id=run.run_id if run else None,
        dataset_name=run.dataset.name if run else "dataset",
        dataset_uri=run.dataset.uri if run else "(not a dataset upload)",
        stopped=stopped,
        region="us-east-1",
    )


def test_the_best_job_travels_through_the_workflow_unchanged() -> None:
    assert BEST.to_dict() == {**BEST_WIRE, "run_billing_complete": True}
    assert BestJob.from_dict(BEST.to_dict()) == BEST
    assert Run.from_dict(RUN.to_dict()) == RUN


def test_every_field_of_the_run_and_its_jobs_survives_the_wire() -> None:
    data = Data(
        format="augmented_manifest",
        num_classes=3,
        num_training_samples=120,
        num_validation_samples=30,
        content_type="application/x-recordio",
        channels=(Channel("train", "s3://ds/datasets/d/train.manifest"),),
        attribute_names=("source-ref", "class"),
        test=TestSplit("s3://ds/datasets/d/test.manifest", "s3://ds/datasets/d/", 25, 4096),
        warnings=("validation holds 1 image of class 2",),
        pinned={"s3://ds/datasets/d/train.manifest": "v3"},
    )
    run = dataclasses.replace(RUN, data=data)
    assert Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run  # through Step Functions' JSON
    tuning = Tuning(("a", "b"), started=("a",), already_started=("b",), output_uri="s3://art/tuning/d/r/")
    assert Tuning.from_dict(json.loads(json.dumps(tuning.to_dict()))) == tuning
    assert run.dataset.to_dict()["uri"] == "s3://ds/datasets/digits/"  # the folder the notices name


def test_a_state_written_before_the_optional_fields_existed_still_reads() -> None:
    # An execution in flight when a new release is deployed carries the older state: a missing field
    # means "none" (no validation count read, no attributes, no test split, no warning, nothing pinned,
    # no job started by this execution), never a KeyError halfway through a paid run.
    wire = RUN.to_dict()
    for key in ("num_validation_samples", "attribute_names", "test", "warnings", "pinned"):
        del wire["data"][key]
    data = Run.from_dict(wire).data
    assert (data.num_validation_samples, data.attribute_names, data.test, data.warnings, data.pinned) == (
        0,
        (),
        None,
        (),
        {},
    )
    assert Tuning.from_dict({"job_names": ["j"]}) == Tuning(("j",), started=(), already_started=(), output_uri="")


# ---------------------------------------------------------------------- notifications


def test_the_success_notice_names_everything_a_reader_needs() -> None:
    note = success_message(RUN, BEST, REGISTERED, "eu-west-1")
    assert note.subject == "Tuning succeeded: digits accuracy 0.973"
    assert note.message == (
        "Tuning run digits-0123456789 finished.\n\n"
        "Dataset: s3://ds/datasets/digits/ (manifest version v7)\n"
        "Best validation accuracy: 0.9731\n"
        "Test accuracy: no test split (the validation accuracy above is the best of the run's scores: optimistic; "
        "add test/ + test_lst/ to the dataset for an unbiased one)\n"
        "Optimizer: sgd\n"
        "Training job: digits-0123456789-004-abcdef12 (tuning job digits-0123456789)\n"
        "Hyperparameters:\n"
        "  learning_rate = 0.0123\n"
        "  mini_batch_size = 64\n"
        "Training billed: 5400 s, about $1.10 (worst case allowed: $29.44; us-east-1 list price of 2026-11-28)\n\n"
        "Model package: arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3 (PendingManualApproval)\n"
        "Metrics document: s3://art/metrics/digits/digits-0123456789/metrics.json\n"
        "Model artifact: s3://art/tuning/digits/r/digits-0123456789-004-abcdef12/output/model.tar.gz\n\n"
        "Tuning job: https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1"
        "#/hyper-tuning-jobs/digits-0123456789\n"
        "Model registry: https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/model-registry\n"
    )


def test_without_billing_the_notice_has_no_cost_line_and_china_gets_its_console() -> None:
    unbilled = dataclasses.replace(BEST, bill=None)
    message = success_message(RUN, unbilled, REGISTERED, "cn-north-1").message
    assert "Training billed" not in message
    assert "Hyperparameters:\n  learning_rate = 0.0123\n  mini_batch_size = 64\n\nModel package" in message
    assert "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/model-registry" in message


def test_the_failure_notice_reads_a_lambda_error_and_lists_the_stopped_jobs() -> None:
    cause = json.dumps({"errorType": "QuotaExceeded", "errorMessage": "quota is 0"})
    note = failure({"Error": "States.TaskFailed", "Cause": cause}, RUN, ["a", "b"])
    assert note == Notification(
        subject="Tuning failed: digits (QuotaExceeded)",
        message=(
            "Tuning run digits-0123456789 failed.\n\n"
            "Dataset: s3://ds/datasets/digits/\n"
            "What failed: QuotaExceeded\n"
            "Why: quota is 0\n"
            "What to do: Raise the quota named above in Service Quotas, then upload the manifest again.\n"
            "Stopped tuning jobs so no GPU keeps running: a, b\n"
        ),
    )


def test_a_failure_without_run_or_upload_still_says_what_and_what_to_do() -> None:
    note = failure({"Error": "States.Timeout", "Cause": "{not json"}, None, [])
    assert note == Notification(
        subject="Tuning failed: dataset (States.Timeout)",
        message=(
            "Tuning run failed.\n\n"
            "Dataset: (not a dataset upload)\n"
            "What failed: States.Timeout\n"
            "Why: {not json\n"
            "What to do: The run exceeded its time limit and its tuning jobs were stopped. Lower "
            "max_training_jobs or max_runtime_seconds, or raise max_parallel_jobs.\n"
        ),
    )
    unknown = failure({"Error": "Weird", "Cause": ""}, None, []).message
    assert "What to do: Read the execution's history in the Step Functions console for details" in unknown


def test_the_uploaded_dataset_is_named_from_the_key() -> None:
    event = {"detail": {"bucket": {"name": "ds"}, "object": {"key": "datasets/flowers/manifest.json"}}}
    assert uploaded_dataset(event) == ("flowers", "s3://ds/datasets/flowers/")
    other = {"detail": {"bucket": {"name": "ds"}, "object": {"key": "other/x.json"}}}
    assert uploaded_dataset(other) == ("other/x.json", "s3://ds/other/")
    top = {"detail": {"bucket": {"name": "ds"}, "object": {"key": "manifest.json"}}}  # at the bucket's root
    assert uploaded_dataset(top) == ("manifest.json", "s3://ds/")
    assert uploaded_dataset({"detail": {}}) == ("dataset", "(not a dataset upload)")
    assert uploaded_dataset({"run": RUN.to_dict(), **event}) == ("digits", "s3://ds/datasets/digits/")


# ---------------------------------------------------------------------- registry records


def test_the_metrics_document_is_sagemakers_model_quality_shape_plus_provenance() -> None:
    assert metrics_document(BEST, RUN) == {
        "multiclass_classification_metrics": {"accuracy": {"value": 0.97314, "standard_deviation": "NaN"}},
        "validation_accuracy": 0.97314,
        "hyperparameters": {"mini_batch_size": "64", "learning_rate": "0.0123"},
        "optimizer": "sgd",
        "tuning_job_name": "digits-0123456789",
        "training_job_name": "digits-0123456789-004-abcdef12",
        "dataset_uri": "s3://ds/datasets/digits/",
        "dataset_version": "v7",
        "validation_warnings": [],  # what a `warn` setting let through, kept with the version
    }


def test_registry_metadata_holds_the_run_and_its_hyperparameters() -> None:
    assert customer_metadata(BEST, RUN) == {
        "approval_accuracy": "0.973140",  # no test split: the validation accuracy
        "approval_measure": "validation",  # so a later test accuracy is not compared with it
        "validation_accuracy": "0.973140",
        "tuning_job": "digits-0123456789",
        "training_job": "digits-0123456789-004-abcdef12",
        "optimizer": "sgd",
        "dataset_uri": "s3://ds/datasets/digits/",
        "dataset_version": "v7",
        "run_id": "digits-0123456789",
        "layout": "definitions",
        "strategy": "Bayesian",
        "run_billable_seconds": "5400",
        "run_estimated_cost_usd": "1.1",
        "hp_learning_rate": "0.0123",
        "hp_mini_batch_size": "64",
    }


def test_registry_metadata_is_cut_to_the_apis_limits() -> None:
    many = dataclasses.replace(BEST, hyperparameters={f"h{i:02d}": "1" for i in range(60)})
    meta = customer_metadata(many, RUN)
    assert len(meta) == 50  # CustomerMetadataProperties: at most 50 entries
    assert metadata_safe("a,b[c]", 256) == "a_b_c_"
    assert metadata_safe("x" * 300, 256) == "x" * 256
    assert metadata_safe("", 10) == "_"
    assert metadata_safe("é 1:2/3=+-@_.", 20) == "é 1:2/3=+-@_."


# ---------------------------------------------------------------------- status


def test_a_status_summary_counts_failures_of_both_kinds() -> None:
    describe = {
        "HyperParameterTuningJobName": "r",
        "HyperParameterTuningJobStatus": "InProgress",
        "TrainingJobStatusCounters": {
            "Completed": 3,
            "InProgress": 2,
            "RetryableError": 1,
            "NonRetryableError": 4,
            "Stopped": 5,
        },
        "FailureReason": "why",
        "BestTrainingJob": {},
    }
    assert job_summary(describe) == {
        "name": "r",
        "status": "InProgress",
        "completed": 3,
        "in_progress": 2,
        "failed": 5,
        "stopped": 5,
        "has_best": True,
        "failure_reason": "why",
    }
    bare = job_summary({"HyperParameterTuningJobName": "r", "HyperParameterTuningJobStatus": "Completed"})
    assert bare == {
        "name": "r",
        "status": "Completed",
        "completed": 0,
        "in_progress": 0,
        "failed": 0,
        "stopped": 0,
        "has_best": False,
        "failure_reason": "",
    }


def test_the_optimizer_of_the_best_job_is_tuned_or_static() -> None:
    flat = Best("t", "j", 0.9, {"optimizer": "adam"}, None)
    assert optimizer_of(flat, {"optimizer": "sgd"}) == "adam"
    per_optimizer = Best("t", "j", 0.9, {}, "nag")
    assert optimizer_of(per_optimizer, {"optimizer": "nag"}) == "nag"
    assert optimizer_of(per_optimizer, {}) == "unknown"


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("ThrottlingException", 400, True),
        ("SlowDown", 503, True),
        ("RequestLimitExceeded", 400, True),
        ("InternalFailure", 400, True),
        ("Anything", 500, True),
        ("Anything", 499, False),
        ("ResourceLimitExceeded", 400, False),
    ],
)
def test_what_is_waited_out_and_what_is_not(code: str, status: int, transient: bool) -> None:
    assert is_transient(client_error(code, status)) is transient


def test_the_quota_message_names_the_instance_quota_and_the_fix() -> None:
    # Runs are admitted against min(capacity, quota), so a refusal means the quota is shared or unread.
    assert quota_message("limit is 0.", "ml.g5.xlarge") == (
        "SageMaker refused to start the tuning job: limit is 0. Runs are admitted against the deployment's "
        "capacity and, where it can be read, the account's quota (`make runs` lists the slots held and their "
        "limits): this refusal means something outside this pipeline uses the same quota, or the quota could "
        "not be read and the capacity is above it. In the Service Quotas console (service 'Amazon SageMaker'), "
        "request an increase of 'ml.g5.xlarge for training job usage' (and of 'Maximum number of concurrent "
        "hyperparameter tuning jobs' if that is the quota named above), or lower capacity or max_parallel_jobs "
        "in cdk.json. Then upload the manifest again."
    )


# ---------------------------------------------------------------------- owners and runs


JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/"


class Jobs(Fake):
    """DescribeHyperParameterTuningJob, ListTags and Stop over a few jobs."""

    def __init__(self, jobs: dict[str, tuple[str, str | None]], fail: str | None = None) -> None:
        self.jobs, self.fail = jobs, fail
        self.stopped: list[str] = []

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        if self.fail:
            raise client_error(self.fail)
        if HyperParameterTuningJobName not in self.jobs:
            raise client_error("ResourceNotFound")
        return {
            "HyperParameterTuningJobArn": f"{JOB_ARN}{HyperParameterTuningJobName}",
            "HyperParameterTuningJobStatus": self.jobs[HyperParameterTuningJobName][0],
        }

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        execution = self.jobs[ResourceArn.removeprefix(JOB_ARN)][1]
        tags = [{"Key": "tuning-pipeline:run", "Value": "r"}]
        return {"Tags": tags + ([{"Key": "tuning-pipeline:execution", "Value": execution}] if execution else [])}

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        self.stopped.append(HyperParameterTuningJobName)
        return {}


def test_a_job_belongs_to_the_execution_in_its_tag_and_to_no_one_without_it() -> None:
    sm = Jobs({"a": ("InProgress", "exec-1"), "b": ("InProgress", None)})
    assert owned_by(sm, "a", "exec-1") is True
    assert owned_by(sm, "a", "exec-2") is False
    assert owned_by(sm, "b", "exec-1") is False
    assert owner(sm, f"{JOB_ARN}b") is None
    assert owned_by(sm, "missing", "exec-1") is False
    with pytest.raises(ClientError):
        owned_by(Jobs({}, fail="AccessDeniedException"), "a", "exec-1")


def test_the_failure_path_stops_running_jobs_skips_vanished_ones_and_raises_the_rest() -> None:
    sm = Jobs({"a": ("InProgress", "e"), "b": ("Completed", "e"), "c": ("Stopping", "e")})
    assert stop_running(["a", "missing", "b", "c"], sm) == ["a"]
    assert sm.stopped == ["a"]
    with pytest.raises(ClientError):
        stop_running(["a"], Jobs({}, fail="AccessDeniedException"))


def test_the_run_of_an_ended_execution_comes_from_its_input() -> None:
    event = {
        "detail": {"bucket": {"name": "ds"}, "object": {"key": "datasets/digits/manifest.json", "version-id": "v7"}}
    }
    assert run_of_execution({"input": json.dumps(event)}) == run_id("ds", "digits", "v7")
    assert run_of_execution({"input": json.dumps({"detail": {}})}) is None
    assert run_of_execution({"input": "{broken"}) is None
    assert run_of_execution({}) is None


class Objects(Fake):
    SERVICE = "s3"

    def __init__(self, body: bytes | None = None, error: str = "NoSuchKey") -> None:
        self.body, self.error = body, error

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        assert (Bucket, Key) == ("art", "runs/digits/latest.json")
        if self.body is None:
            raise client_error(self.error)
        return {"Body": io.BytesIO(self.body)}


WARM_RUN = dataclasses.replace(
    RUN, run_id="digits-bbbbbbbbbb", settings=TuningSettings(layout="job_per_optimizer", max_parallel_jobs=4)
)
JOBS = ["digits-bbbbbbbbbb-sgd", "digits-bbbbbbbbbb-adam"]


def test_warm_start_maps_each_job_to_the_same_optimizers_job_of_the_previous_run() -> None:
    previous = {"run_id": "digits-aaaaaaaaaa", "layout": "job_per_optimizer", "tuning_jobs": ["digits-aaaaaaaaaa-adam"]}
    parents = warm_start_parents(Objects(json.dumps(previous).encode()), "art", WARM_RUN, JOBS)
    assert parents == {"digits-bbbbbbbbbb-adam": ["digits-aaaaaaaaaa-adam"]}


@pytest.mark.parametrize(
    "previous",
    [
        {"run_id": "digits-aaaaaaaaaa", "layout": "flat", "tuning_jobs": ["digits-aaaaaaaaaa"]},  # other layout
        {"run_id": "digits-bbbbbbbbbb", "layout": "job_per_optimizer", "tuning_jobs": JOBS},  # this very run
    ],
)
def test_warm_start_needs_an_earlier_run_of_the_same_layout(previous: dict[str, Any]) -> None:
    assert warm_start_parents(Objects(json.dumps(previous).encode()), "art", WARM_RUN, JOBS) == {}


def test_warm_start_without_a_previous_run_is_a_cold_start_and_other_errors_are_raised() -> None:
    assert warm_start_parents(Objects(None, "NoSuchKey"), "art", WARM_RUN, JOBS) == {}
    with pytest.raises(ClientError):
        warm_start_parents(Objects(None, "AccessDenied"), "art", WARM_RUN, JOBS)


def test_a_partial_bill_says_so_in_the_notice() -> None:
    partial = dataclasses.replace(BEST, bill=Bill(5400, 1.1, billed_jobs=144, training_jobs=750))
    message = success_message(RUN, partial, REGISTERED, "us-east-1").message
    assert (
        "Training billed: 5400 s, about $1.10 - partial: 144 of 750 training jobs counted "
        "(worst case allowed: $29.44; us-east-1 list price of 2026-11-28)\n"
    ) in message
    unlisted = dataclasses.replace(BEST, bill=Bill(5400, 1.1, billed_jobs=0, training_jobs=None))
    assert (
        "about $1.10 - partial: the training jobs could not be listed (worst case"
        in success_message(RUN, unlisted, REGISTERED, "x").message
    )


def test_only_a_completed_best_job_with_a_metric_counts_and_its_definition_is_kept() -> None:
    from pipeline.evaluation.best_job import choose_best

    def described(name: str, status: str, metric: float | None, **extra: Any) -> dict[str, Any]:
        best: dict[str, Any] = {"TrainingJobName": f"{name}-1", "TrainingJobStatus": status, **extra}
        if metric is not None:
            best["FinalHyperParameterTuningJobObjectiveMetric"] = {"Value": metric}
        return {"HyperParameterTuningJobName": name, "BestTrainingJob": best}

    best = choose_best(
        [
            described("stopped", "Stopped", 0.99),  # the highest, but not Completed
            described("nometric", "Completed", None),
            described("kept", "Completed", 0.8, TrainingJobDefinitionName="adam"),
        ]
    )
    assert (best.tuning_job_name, best.accuracy, best.definition_name, best.hyperparameters) == (
        "kept",
        0.8,
        "adam",
        {},
    )


def test_lines_are_numbered_from_one_and_a_crlf_is_named_where_it_is() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import chunk_lines, text_lines

    assert list(text_lines("a\nb", "x.lst")) == [(1, "a"), (2, "b")]
    assert list(chunk_lines([b"a\nb"], "x.lst")) == [(1, "a"), (2, "b")]
    with pytest.raises(DatasetError, match=r"^x.lst, line 3: Windows \(CRLF\) line ending"):
        list(text_lines("a\nb\nc\r\nd", "x.lst"))
    with pytest.raises(DatasetError, match=r"^x.lst, line 1: starts with a UTF-8 byte-order mark"):
        list(text_lines("\ufeffa\nb", "x.lst"))
    assert list(text_lines("a\n\ufeffb", "x.lst")) == [(1, "a"), (2, "\ufeffb")]  # a BOM is only a BOM at the start


def test_an_error_without_code_or_status_is_not_transient() -> None:
    assert is_transient(ClientError({}, "Op")) is False
    assert is_transient(ClientError({"Error": {}, "ResponseMetadata": {}}, "Op")) is False


def test_an_error_code_and_message_are_read_even_when_the_response_lacks_them() -> None:
    # botocore builds ClientError from whatever the service sent: a HEAD's 404 has a code and no body.
    assert (error_code(ClientError({}, "Op")), error_message(ClientError({}, "Op"))) == ("", "")
    assert error_code(ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")) == "404"
    assert error_message(ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")) == "Not Found"


def test_the_duplicate_index_names_its_first_line_even_far_apart() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import parse_lst

    text = "\n".join([f"{i}\t0\tc/{i}.png" for i in range(5)] + ["", "9\t1\tc/9.png", "3\t1\tc/x.png"])
    with pytest.raises(
        DatasetError, match=r"^x.lst, line 8: index 3 already used on line 4\. Indexes must be unique\.$"
    ):
        parse_lst(text, "x.lst")


TESTED = Tested(
    status="Completed",
    accuracy=0.9125,
    samples=240,
    evaluation_uri="s3://art/metrics/digits/digits-0123456789/evaluation.json",
)


def test_with_a_test_split_the_records_lead_with_the_held_out_accuracy() -> None:
    note = success_message(RUN, BEST, REGISTERED, "eu-west-1", TESTED)
    assert note.subject == "Tuning succeeded: digits test accuracy 0.912"
    assert (
        "Best validation accuracy: 0.9731\n"
        "Test accuracy: 0.9125 on 240 held-out images (s3://art/metrics/digits/digits-0123456789/evaluation.json)\n"
    ) in note.message
    meta = customer_metadata(BEST, RUN, TESTED)
    assert (meta["approval_accuracy"], meta["test_accuracy"], meta["validation_accuracy"]) == (
        "0.912500",
        "0.912500",
        "0.973140",
    )
    assert meta["approval_measure"] == "test"
    document = metrics_document(BEST, RUN, TESTED)
    assert document["multiclass_classification_metrics"]["accuracy"]["value"] == 0.9125  # what Studio shows
    assert (document["validation_accuracy"], document["test_accuracy"], document["test_samples"]) == (
        0.97314,
        0.9125,
        240,
    )
    assert document["evaluation_uri"] == TESTED.evaluation_uri


def test_a_failed_evaluation_is_said_with_its_reason_and_what_it_means() -> None:
    failed = Tested(status="Failed", failure_reason="r-test: Failed. ClientError: out of memory")
    assert (
        "Test accuracy: the held-out evaluation failed (r-test: Failed. ClientError: out of memory); the model is "
        "registered pending manual approval, judged by its validation accuracy only\n"
    ) in success_message(RUN, BEST, REGISTERED, "x", failed).message


@pytest.mark.parametrize("status", ["NotEvaluated", "Failed", "InProgress"])
def test_without_a_completed_evaluation_the_validation_accuracy_stands(status: str) -> None:
    tested = Tested(status=status)
    assert customer_metadata(BEST, RUN, tested)["approval_accuracy"] == "0.973140"
    assert "test_accuracy" not in metrics_document(BEST, RUN, tested)
    assert success_message(RUN, BEST, REGISTERED, "x", tested).subject == "Tuning succeeded: digits accuracy 0.973"


def test_a_cause_in_json_without_the_lambda_fields_is_kept_as_it_came() -> None:
    from pipeline.aws.errors import caught

    # A service integration's Cause can be JSON that is not a Lambda error: nothing is lost.
    assert caught("States.TaskFailed", '{"Status": 400}') == ("States.TaskFailed", '{"Status": 400}')
    assert caught("X", '{"errorMessage": "m"}') == ("X", "m")
    assert caught("X", '{"errorType": "T"}') == ("T", '{"errorType": "T"}')
    note = failure({}, None, [])  # a Catch always records Error and Cause; if not, the notice still goes out
    assert "What failed: Error\nWhy: \n" in note.message


def test_every_validation_warning_is_listed_on_its_own_line() -> None:
    warned = dataclasses.replace(RUN, data=dataclasses.replace(RUN.data, warnings=("first", "second")))
    message = success_message(warned, BEST, REGISTERED, "eu-west-1").message
    assert "Validation warned (2); the version is not auto-approved:\n- first\n- second\n\n" in message


def test_the_success_notice_says_how_each_lease_was_admitted() -> None:
    from pipeline.governance.admission import Admissions, Admitted

    training = Admitted("ml.g4dn.xlarge", 2, 2, enqueued_at=100.0, admitted_at=195.0, waited_seconds=95.0, note="")
    transform = Admitted("ml.m5.xlarge", 1, 1, enqueued_at=900.0, admitted_at=900.0, waited_seconds=0.0, note="")
    both = success_message(RUN, BEST, REGISTERED, "eu-west-1", admission=Admissions(training, transform)).message
    assert (
        "Training slots: queued 95 s until 2 ml.g4dn.xlarge slots of 2 were free.\n"
        "Test transform slot: admitted at once (1 ml.m5.xlarge slot of 1).\n"
        f"Model package: {REGISTERED.model_package_arn}"
    ) in both
    alone = success_message(RUN, BEST, REGISTERED, "eu-west-1", admission=Admissions(training)).message
    assert "Training slots: queued 95 s until 2 ml.g4dn.xlarge slots of 2 were free.\nModel package:" in alone
    assert "slot" not in success_message(RUN, BEST, REGISTERED, "eu-west-1").message  # no admission: no line


def test_a_subject_left_empty_by_its_text_still_says_what_sent_it() -> None:
    # SNS refuses an empty Subject; a dataset named with spaces only must not lose the notice.
    assert subject_safe(" \t\n ") == "Tuning pipeline"
    assert subject_safe("Tuning failed: données") == "Tuning failed: donnees"
