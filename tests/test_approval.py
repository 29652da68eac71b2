"""The approval gate: which accuracy it reads, when it reads none, and whose approved version it
compares with. Each expected status is the README's rule ("Approval"), written down here case by
case; none is computed by the code under test.

- with a test split, the gate reads the test accuracy, never the validation accuracy;
- a failed or missing evaluation, a warned dataset, or a test split under
  approval.min_test_images leaves the version to a person;
- "better than the approved version" means this dataset's approved version, not the group's newest.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.register_model import champion, register
from local.sagemaker.server import SageMakerServer
from local.sagemaker.service import LocalSageMaker
from pipeline.contract import BestJob, Run, Tested, Tuning
from pipeline.evaluation.registry import CHAMPION_SEARCH, Champion, approval_decision, model_package_request
from pipeline.settings.keys import Approval
from tests.sample_run import BEST, RUN
from tests.test_evaluation import TESTED_RUN

APPROVED, PENDING = "Approved", "PendingManualApproval"
NONE = Champion(accuracy=None)


def auto(run: Run, threshold: float = 0.9, min_test_images: int = 100, warnings: tuple[str, ...] = ()) -> Run:
    approval = Approval(mode="auto", threshold=threshold, min_test_images=min_test_images)
    return dataclasses.replace(
        run,
        settings=dataclasses.replace(run.settings, approval=approval),
        data=dataclasses.replace(run.data, warnings=warnings),
    )


def best(validation: float) -> BestJob:
    return dataclasses.replace(BEST, accuracy=validation)


def completed(accuracy: float, samples: int = 200) -> Tested:
    return Tested(status="Completed", accuracy=accuracy, samples=samples, evaluation_uri="s3://art/e.json")


@pytest.mark.parametrize(
    ("validation", "test", "expected"),
    [
        # The gate reads the test accuracy: a validation accuracy on the other side of the
        # threshold changes nothing, in either direction.
        (0.99, 0.85, PENDING),
        (0.80, 0.95, APPROVED),
        (0.80, 0.90, APPROVED),  # exactly at the threshold: "good enough" includes it
        (0.99, 0.8999, PENDING),
    ],
)
def test_with_a_test_split_the_gate_reads_the_test_accuracy_never_the_validation_one(
    validation: float, test: float, expected: str
) -> None:
    decision = approval_decision(auto(TESTED_RUN), best(validation), completed(test), NONE)
    assert decision.status == expected
    assert f"test accuracy {test:.4f}" in decision.reason


@pytest.mark.parametrize(("validation", "expected"), [(0.90, APPROVED), (0.8999, PENDING)])
def test_without_a_test_split_the_gate_reads_the_validation_accuracy(validation: float, expected: str) -> None:
    decision = approval_decision(auto(RUN), best(validation), None, NONE)
    assert decision.status == expected
    assert f"validation accuracy {validation:.4f}" in decision.reason


@pytest.mark.parametrize(
    "outcome",
    [
        Tested(status="Failed", failure_reason="digits-0123456789-test: Failed. ClientError: out of memory"),
        Tested(status="NotEvaluated"),  # a test split, yet no evaluation result reached the gate
        None,
    ],
)
def test_a_failed_or_missing_evaluation_never_leads_to_auto_approval(outcome: Tested | None) -> None:
    decision = approval_decision(auto(TESTED_RUN), best(0.99), outcome, NONE)
    assert decision.status == PENDING
    if outcome is not None and outcome.status == "Failed":
        assert "out of memory" in decision.reason  # the notice says why


@pytest.mark.parametrize(("samples", "expected"), [(99, PENDING), (100, APPROVED), (2, PENDING)])
def test_a_test_split_under_min_test_images_does_not_gate_approval(samples: int, expected: str) -> None:
    decision = approval_decision(auto(TESTED_RUN, min_test_images=100), best(0.99), completed(0.99, samples), NONE)
    assert decision.status == expected
    if expected == PENDING:
        assert f"has {samples} images, fewer than approval.min_test_images (100)" in decision.reason


def test_a_dataset_validation_warned_about_is_left_to_a_person() -> None:
    warned = auto(TESTED_RUN, warnings=("test.manifest line 3 and train.manifest line 9: the same bytes",))
    decision = approval_decision(warned, best(0.99), completed(0.99), NONE)
    assert decision.status == PENDING and "1 warning(s)" in decision.reason


@pytest.mark.parametrize(
    ("approved", "test", "expected"),
    [(0.95, 0.95, PENDING), (0.95, 0.9501, APPROVED), (0.97, 0.95, PENDING)],  # equal is not better
)
def test_auto_approval_must_beat_the_datasets_approved_version(approved: float, test: float, expected: str) -> None:
    decision = approval_decision(auto(TESTED_RUN), best(0.5), completed(test), Champion(approved, measure="test"))
    assert decision.status == expected


@pytest.mark.parametrize(("run", "measure"), [(TESTED_RUN, "validation"), (RUN, "test")])
def test_a_champion_judged_on_the_other_accuracy_is_not_compared(run: Run, measure: str) -> None:
    # Test accuracy is honest, the best validation accuracy optimistic: one is not "better" than the other.
    outcome = completed(0.99) if run.data.test is not None else None
    decision = approval_decision(auto(run), best(0.99), outcome, Champion(0.5, measure=measure))
    assert decision.status == PENDING and f"judged on its {measure} accuracy (0.5000)" in decision.reason


def test_manual_mode_and_an_unfinished_champion_search_never_approve() -> None:
    manual = dataclasses.replace(TESTED_RUN, settings=dataclasses.replace(TESTED_RUN.settings, approval=Approval()))
    assert approval_decision(manual, best(0.99), completed(0.99), NONE).status == PENDING
    unfinished = Champion(accuracy=None, complete=False)
    decision = approval_decision(auto(TESTED_RUN), best(0.99), completed(0.99), unfinished)
    assert decision.status == PENDING and f"newest {CHAMPION_SEARCH} approved" in decision.reason


# ---------------------------------------------------------------------- the registry, per dataset


@pytest.fixture
def registry() -> Iterator[Any]:
    """A model package group on the local SageMaker, reached over its real JSON protocol."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        with SageMakerServer(LocalSageMaker(s3_client=lambda: s3)) as server:
            sm = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=server.endpoint)
            sm.create_model_package_group(ModelPackageGroupName="g")
            s3.create_bucket(Bucket="art")
            yield sm, s3


def dataset_run(name: str, run_id: str) -> Run:
    ref = dataclasses.replace(TESTED_RUN.dataset, name=name, manifest_key=f"datasets/{name}/manifest.json")
    return dataclasses.replace(auto(TESTED_RUN, threshold=0.5), run_id=run_id, dataset=ref)


def register_run(registry: Any, run: Run, accuracy: float) -> str:
    sm, s3 = registry
    tuning = Tuning.from_dict({"job_names": [run.run_id]})
    done = register(run, tuning, best(0.5), sm, s3, group="g", bucket="art", tested=completed(accuracy))
    return done.approval_status


def test_the_champion_is_this_datasets_approved_version_not_the_groups_newest(registry: Any) -> None:
    assert register_run(registry, dataset_run("cats", "cats-1"), 0.80) == APPROVED  # first of its dataset
    # Another dataset's much better model is approved later, in the same group.
    assert register_run(registry, dataset_run("dogs", "dogs-1"), 0.99) == APPROVED
    # cats at 0.85 beats cats' 0.80; the newer dogs 0.99 is not its champion.
    assert register_run(registry, dataset_run("cats", "cats-2"), 0.85) == APPROVED
    assert register_run(registry, dataset_run("cats", "cats-3"), 0.84) == PENDING  # below cats' 0.85
    sm, _ = registry
    assert champion(sm, "g", dataset_run("dogs", "x").dataset.uri, "x") == Champion(accuracy=0.99, measure="test")
    assert champion(sm, "g", dataset_run("birds", "x").dataset.uri, "x") == Champion(accuracy=None)


def test_a_retried_registration_does_not_compare_the_run_with_its_own_version(registry: Any) -> None:
    run = dataset_run("cats", "cats-1")
    assert register_run(registry, run, 0.80) == APPROVED
    # The step ran again (say, its last write was throttled): the version it made is not its champion.
    assert register_run(registry, run, 0.80) == APPROVED


@pytest.mark.parametrize(
    ("run", "outcome", "champion_found", "reason"),
    [
        (
            RUN,
            None,
            NONE,
            "validation accuracy 0.9500 reaches approval.threshold (0.9) and this dataset has no approved version yet",
        ),
        (
            RUN,
            None,
            Champion(0.94),
            "validation accuracy 0.9500 reaches approval.threshold (0.9) and beats this "
            "dataset's approved version (0.9400)",
        ),
        (
            RUN,
            None,
            Champion(0.96),
            "validation accuracy 0.9500 does not beat this dataset's approved version (0.9600)",
        ),
        (
            TESTED_RUN,
            Tested(status="NotEvaluated"),
            NONE,
            "the dataset has a test split but no completed test evaluation",
        ),
    ],
)
def test_the_notice_says_in_words_why_the_version_is_or_is_not_approved(
    run: Run, outcome: Tested | None, champion_found: Champion, reason: str
) -> None:
    assert approval_decision(auto(run), best(0.95), outcome, champion_found).reason == reason
    manual = dataclasses.replace(run, settings=dataclasses.replace(run.settings, approval=Approval()))
    assert approval_decision(manual, best(0.95), outcome, champion_found).reason == (
        "approval.mode is manual: a person approves every version"
    )


def test_a_version_registered_before_the_measure_was_recorded_is_judged_by_its_metadata(registry: Any) -> None:
    # Versions registered before `approval_measure` existed: test-judged if they hold test_accuracy.
    sm, _ = registry
    for name, extra in (("old-test", {"test_accuracy": "0.910000"}), ("old-validation", {})):
        run = dataset_run(name, f"{name}-1")
        request = model_package_request(
            group_name="g", best=BEST, run=run, metrics_uri="s3://art/m.json", status=APPROVED
        )
        request["CustomerMetadataProperties"] = {
            "dataset_uri": run.dataset.uri,
            "run_id": run.run_id,
            "approval_accuracy": "0.910000",
            **extra,
        }
        sm.create_model_package(**request)
    assert champion(sm, "g", dataset_run("old-test", "x").dataset.uri, "x") == Champion(0.91, measure="test")
    assert champion(sm, "g", dataset_run("old-validation", "x").dataset.uri, "x") == Champion(0.91)


@pytest.mark.parametrize(("newer", "found"), [(CHAMPION_SEARCH - 1, True), (CHAMPION_SEARCH, False)])
def test_the_champion_search_reads_exactly_the_newest_hundred(registry: Any, newer: int, found: bool) -> None:
    sm, _ = registry
    register_run(registry, dataset_run("cats", "cats-1"), 0.80)
    for i in range(newer):
        run = dataset_run(f"d{i}", f"d{i}-1")
        sm.create_model_package(
            **model_package_request(
                group_name="g",
                best=BEST,
                run=run,
                metrics_uri="s3://art/m.json",
                status=APPROVED,
                tested=completed(0.6),
            )
        )
    expected = Champion(0.8, measure="test") if found else Champion(None, complete=False)
    assert champion(sm, "g", dataset_run("cats", "x").dataset.uri, "x") == expected
    # Not found within the search: not assumed absent, a person decides.
    assert register_run(registry, dataset_run("cats", "cats-2"), 0.99) == (APPROVED if found else PENDING)


def test_the_champion_search_skips_what_the_pipeline_did_not_register_and_reads_long_names(registry: Any) -> None:
    sm, _ = registry
    # A dataset URI over CustomerMetadataProperties' 256-character value limit is stored cut to 256.
    long_name = "d" * 260
    assert register_run(registry, dataset_run(long_name, "long-1"), 0.80) == APPROVED
    assert champion(sm, "g", dataset_run(long_name, "x").dataset.uri, "x") == Champion(0.8, measure="test")
    # The newest approved version was registered by hand, with no metadata at all: not anyone's champion.
    by_hand = model_package_request(group_name="g", best=BEST, run=RUN, metrics_uri="s3://art/m.json", status=APPROVED)
    del by_hand["CustomerMetadataProperties"]
    sm.create_model_package(**by_hand)
    # A version that recorded its measure is judged by it, whatever else its metadata holds.
    run = dataset_run("cats", "cats-1")
    request = model_package_request(group_name="g", best=BEST, run=run, metrics_uri="s3://art/m.json", status=APPROVED)
    request["CustomerMetadataProperties"] = {
        "dataset_uri": run.dataset.uri,
        "run_id": run.run_id,
        "approval_accuracy": "0.700000",
        "test_accuracy": "0.650000",
        "approval_measure": "validation",
    }
    sm.create_model_package(**request)
    assert champion(sm, "g", run.dataset.uri, "x") == Champion(0.7, measure="validation")
    assert champion(sm, "g", dataset_run(long_name, "x").dataset.uri, "x") == Champion(0.8, measure="test")


def test_registering_returns_the_version_and_why_and_writes_both_json_documents(registry: Any) -> None:
    sm, s3 = registry
    run = dataset_run("cats", "cats-1")
    tuning = Tuning.from_dict({"job_names": ["cats-1-sgd", "cats-1-adam"]})
    done = register(run, tuning, best(0.5), sm, s3, group="g", bucket="art", tested=completed(0.8))
    package = sm.describe_model_package(ModelPackageName=done.model_package_arn)
    assert (package["ModelApprovalStatus"], done.approval_status) == (APPROVED, APPROVED)
    assert done.approval_reason == (
        "test accuracy 0.8000 reaches approval.threshold (0.5) and this dataset has no approved version yet"
    )
    assert done.metrics_uri == "s3://art/metrics/cats/cats-1/metrics.json"
    metrics = s3.get_object(Bucket="art", Key="metrics/cats/cats-1/metrics.json")
    assert metrics["ContentType"] == "application/json"
    document = json.loads(metrics["Body"].read())
    assert (document["test_accuracy"], document["test_samples"]) == (0.8, 200)  # the held-out figures, not lost
    assert document["multiclass_classification_metrics"]["accuracy"]["value"] == 0.8
    previous = s3.get_object(Bucket="art", Key="runs/cats/latest.json")  # what warm start reads
    assert previous["ContentType"] == "application/json"
    record = json.loads(previous["Body"].read())
    assert {k: record[k] for k in ("dataset", "run_id", "layout", "tuning_jobs")} == {
        "dataset": "cats",
        "run_id": "cats-1",
        "layout": run.settings.layout,
        "tuning_jobs": ["cats-1-sgd", "cats-1-adam"],
    }


def test_the_package_request_describes_the_run_and_points_at_its_model_quality_document() -> None:
    from local.api_model import request_errors

    run, metrics = dataset_run("cats", "cats-1"), "s3://art/metrics/cats/cats-1/metrics.json"
    request = model_package_request(
        group_name="g", best=best(0.9), run=run, metrics_uri=metrics, status=PENDING, tested=completed(0.8)
    )
    assert request_errors("sagemaker", "CreateModelPackage", request) == []
    assert request["ModelPackageDescription"] == (
        f"Best of tuning run cats-1 on {run.dataset.uri} (version {run.dataset.version_id}): "
        "validation accuracy 0.9000, test accuracy 0.8000"
    )
    # Studio reads model quality as JSON from here (CreateModelPackage: ModelMetrics.ModelQuality.Statistics).
    assert request["ModelMetrics"] == {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics}}
    }
    untested = model_package_request(group_name="g", best=best(0.9), run=run, metrics_uri=metrics, status=PENDING)
    assert untested["ModelPackageDescription"].endswith("validation accuracy 0.9000")
    # ModelPackageDescription holds at most 1,024 characters; a long dataset name must not break registration.
    long = model_package_request(
        group_name="g", best=BEST, run=dataset_run("d" * 1000, "long-1"), metrics_uri=metrics, status=PENDING
    )
    assert request_errors("sagemaker", "CreateModelPackage", long) == []
    assert len(long["ModelPackageDescription"]) == 1024
