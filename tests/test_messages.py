"""The notices a run sends: every line a reader needs, written out in full."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from handlers.handle_failure import uploaded_dataset
from pipeline.contract import (
    Bill,
    Notification,
    Run,
    Tested,
)
from pipeline.evaluation.registry import customer_metadata, metrics_document
from pipeline.messages import failure_message, subject_safe, success_message
from tests.sample_run import BEST, REGISTERED, RUN


def failure(error: dict[str, Any], run: Run | None, stopped: list[str]) -> Notification:
    return failure_message(
        error,
        run_id=run.run_id if run else None,
        dataset_name=run.dataset.name if run else "dataset",
        dataset_uri=run.dataset.uri if run else "(not a dataset upload)",
        stopped=stopped,
        region="us-east-1",
    )


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


def test_the_notice_says_why_a_version_is_approved_or_left_and_only_a_scored_test_counts() -> None:
    reasoned = dataclasses.replace(REGISTERED, approval_reason="test accuracy 0.95 >= threshold 0.9")
    assert "Why: test accuracy 0.95 >= threshold 0.9\n" in success_message(RUN, BEST, reasoned, "x").message
    assert "Why:" not in success_message(RUN, BEST, dataclasses.replace(REGISTERED, approval_reason=""), "x").message
    # Completed but without an accuracy (no answer scored): no test accuracy is claimed.
    unscored = Tested(status="Completed", accuracy=None, samples=0)
    assert "Test accuracy: no test split" in success_message(RUN, BEST, REGISTERED, "x", unscored).message
    scored = Tested(status="Completed", accuracy=0.91234, samples=120, evaluation_uri="s3://a/e.json")
    assert "Test accuracy: 0.9123 on 120 held-out images (s3://a/e.json)\n" in (
        success_message(RUN, BEST, REGISTERED, "x", scored).message
    )
