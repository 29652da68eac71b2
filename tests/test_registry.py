"""What registration records: the metrics document and the model package's metadata."""

from __future__ import annotations

import dataclasses

from pipeline.contract import (
    Tested,
)
from pipeline.evaluation.registry import customer_metadata, metadata_safe, metrics_document
from pipeline.messages import success_message
from tests.sample_run import BEST, REGISTERED, RUN

TESTED = Tested(
    status="Completed",
    accuracy=0.9125,
    samples=240,
    evaluation_uri="s3://art/metrics/digits/digits-0123456789/evaluation.json",
)


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
        "warm_start": {"setting": "off", "parents": []},  # a cold start: none weighed
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
