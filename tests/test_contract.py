"""The run contract's wire form: every field survives the trip between steps."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.aws.input_forms import Channel, InputForm
from pipeline.contract import (
    BestJob,
    Data,
    Run,
    TestSplit,
    Tuning,
)
from tests.sample_run import BEST, BEST_WIRE, RUN


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
        channels=(
            Channel(
                "train",
                "s3://ds/datasets/d/train.manifest",
                InputForm("application/x-recordio", "AugmentedManifestFile", "RecordIO", "Pipe"),
                ("source-ref", "class"),
            ),
        ),
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
    for key in ("num_validation_samples", "test", "warnings", "pinned"):
        del wire["data"][key]
    for channel in wire["data"]["channels"]:
        del channel["attribute_names"]
        for key in ("record_wrapper", "input_mode"):
            del channel["form"][key]
    data = Run.from_dict(wire).data
    assert (data.num_validation_samples, data.attribute_names, data.test, data.warnings, data.pinned) == (
        0,
        (),
        None,
        (),
        {},
    )
    assert Tuning.from_dict({"job_names": ["j"]}) == Tuning(("j",), started=(), already_started=(), output_uri="")


# The run state as the release before channels carried their form wrote it (2026-12-06): channels as
# {name: uri}, the content type and the attribute names beside them. A run queued at Admit when the
# new release is deployed reads on with its format's form.
LEGACY_AUGMENTED = {
    "format": "augmented_manifest",
    "num_classes": 3,
    "num_training_samples": 120,
    "num_validation_samples": 30,
    "content_type": "application/x-recordio",
    "channels": {"train": "s3://ds/datasets/d/train.manifest", "validation": "s3://ds/datasets/d/validation.manifest"},
    "attribute_names": ["source-ref", "class"],
}


def test_a_state_written_before_channels_carried_their_form_still_reads() -> None:
    data = Data.from_dict(LEGACY_AUGMENTED)
    # "Image classification algorithm" page: augmented manifests are AugmentedManifestFile, records
    # wrapped in RecordIO, Pipe mode, application/x-recordio; attributes image first, label second.
    streamed = InputForm("application/x-recordio", "AugmentedManifestFile", "RecordIO", "Pipe")
    assert data.channels == (
        Channel("train", "s3://ds/datasets/d/train.manifest", streamed, ("source-ref", "class")),
        Channel("validation", "s3://ds/datasets/d/validation.manifest", streamed, ("source-ref", "class")),
    )
    assert data.attribute_names == ("source-ref", "class")  # the test split's records are read with them
    images = Data.from_dict(
        {
            **LEGACY_AUGMENTED,
            "format": "image",
            "content_type": "application/x-image",
            "channels": {"train": "s3://ds/datasets/d/train/"},
            "attribute_names": [],
        }
    )
    assert images.channels == (Channel("train", "s3://ds/datasets/d/train/", InputForm("application/x-image")),)


def test_a_failed_evaluation_reads_the_error_the_catch_recorded() -> None:
    from pipeline.contract import Tested

    # A Lambda's error: Cause is the function's JSON (errorType, errorMessage); in plain words.
    cause = json.dumps({"errorType": "QuotaExceeded", "errorMessage": "no transform quota", "stackTrace": []})
    tested = Tested.from_dict({"status": "Failed", "error": {"Error": "QuotaExceeded", "Cause": cause}})
    assert tested == Tested(status="Failed", failure_reason="QuotaExceeded: no transform quota")
    # The state machine's own error (a task timeout): Cause is text, kept as it is.
    timeout = Tested.from_dict({"status": "Failed", "error": {"Error": "States.Timeout", "Cause": "took too long"}})
    assert timeout.failure_reason == "States.Timeout: took too long"
    assert Tested.from_dict({"status": "Failed", "error": {"Error": "States.Timeout"}}).failure_reason == (
        "States.Timeout"  # no Cause: no dangling separator
    )
    # CheckEvaluation's own result carries no `error`: its fields as written.
    done = {"status": "Completed", "accuracy": 0.93, "samples": 120, "evaluation_uri": "s3://a/e.json"}
    assert Tested.from_dict(done) == Tested("Completed", "", 0.93, 120, "s3://a/e.json")


def test_each_step_reads_its_input_as_the_contracts_types() -> None:
    from pipeline.step_inputs import ChooseBestInput, ComposeSuccessInput, ReleaseInput

    tuning = {"job_names": ["j"], "started": ["j"], "already_started": [], "output_uri": "s3://a/t/"}
    event = {"run_id": "r", "tuning": tuning, "cost": dataclasses.asdict(RUN.cost)}
    parsed = ChooseBestInput.parse({**event, "ignored": 1})
    assert parsed.run_id == "r" and parsed.tuning.job_names == ("j",) and parsed.cost == RUN.cost
    # An optional field absent, null or empty is None; a required one absent fails loudly.
    assert ChooseBestInput.parse({"run_id": "r", "tuning": tuning}).cost is None
    assert ChooseBestInput.parse({"run_id": "r", "tuning": tuning, "cost": None}).cost is None
    assert ChooseBestInput.parse({"run_id": "r", "tuning": tuning, "cost": {}}).cost is None
    with pytest.raises(TypeError, match="run_id"):
        ChooseBestInput.parse({"tuning": tuning})
    # A plain value passes as it is; a default stays when the key is absent.
    assert ReleaseInput.parse({"execution": "e", "started": "s"}) == ReleaseInput(execution="e", started="s")
    assert ReleaseInput.parse({"execution": "e", "started": "s", "phase": "training", "settle": True}).settle is True
    # A nested dataclass without from_dict is built from its fields.
    registered = {"model_package_arn": "arn:p", "approval_status": "PendingManualApproval", "metrics_uri": "s3://m"}
    composed = ComposeSuccessInput.parse(
        {"run": RUN.to_dict(), "best": BEST.to_dict(), "registered": registered, "admission": None}
    )
    assert composed.registered.model_package_arn == "arn:p" and composed.admission is None
    assert composed.run == RUN and composed.best == BEST and composed.tested is None
