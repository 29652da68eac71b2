"""Model Registry entry for the best training job: pure functions."""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from pipeline.contract import BestJob, Run, Tested, Tuning

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.literals import ModelApprovalStatusType
    from mypy_boto3_sagemaker.type_defs import CreateModelPackageInputTypeDef

CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image"]
RESPONSE_TYPES = ["application/json"]
METADATA_EXTRA_CHARS = set("_.:/=+-@")
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
METADATA_MAX_ENTRIES = 50
# Approved versions read (newest first) to find this dataset's: one group serves every dataset.
CHAMPION_SEARCH = 100


def metadata_safe(text: str, limit: int) -> str:
    """Keep CustomerMetadataProperties within `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`: others become '_'."""
    out = "".join(c if unicodedata.category(c)[0] in "LZN" or c in METADATA_EXTRA_CHARS else "_" for c in text)
    return (out or "_")[:limit]


def test_metrics(tested: Tested | None) -> Tested | None:
    """The held-out evaluation, when there was one and it completed."""
    return tested if tested is not None and tested.status == "Completed" and tested.accuracy is not None else None


def approval_accuracy(best: BestJob, tested: Tested | None) -> float:
    """What auto-approval compares: the test accuracy when there is one (unbiased), else the best
    validation accuracy (the best of many noisy scores: optimistic)."""
    held_out = test_metrics(tested)
    return held_out.accuracy if held_out is not None and held_out.accuracy is not None else best.accuracy


def metrics_document(
    best: BestJob, run: Run, tested: Tested | None = None, tuning: Tuning | None = None
) -> dict[str, Any]:
    """SageMaker model-quality JSON (read by Studio: the test accuracy when there is one) plus
    where the model came from, and which earlier runs its search started from."""
    held_out = test_metrics(tested)
    document: dict[str, Any] = {
        "multiclass_classification_metrics": {
            "accuracy": {"value": approval_accuracy(best, tested), "standard_deviation": "NaN"},
        },
        "validation_accuracy": best.accuracy,
        "hyperparameters": best.hyperparameters,
        "optimizer": best.optimizer,
        "tuning_job_name": best.tuning_job_name,
        "training_job_name": best.training_job_name,
        "dataset_uri": run.dataset.uri,
        "dataset_version": run.dataset.version_id,
        "validation_warnings": list(run.data.warnings),
        "warm_start": {
            "setting": run.settings.warm_start,
            "parents": [dataclasses.asdict(p) for p in (tuning.warm_start if tuning else ())],
        },
    }
    if held_out is not None:
        document |= {
            "test_accuracy": held_out.accuracy,
            "test_samples": held_out.samples,
            "evaluation_uri": held_out.evaluation_uri,
        }
    return document


def customer_metadata(best: BestJob, run: Run, tested: Tested | None = None) -> dict[str, str]:
    held_out = test_metrics(tested)
    raw: dict[str, str] = {
        "approval_accuracy": f"{approval_accuracy(best, tested):.6f}",
        "approval_measure": "test" if held_out is not None else "validation",
        **({"test_accuracy": f"{held_out.accuracy:.6f}"} if held_out and held_out.accuracy is not None else {}),
        "validation_accuracy": f"{best.accuracy:.6f}",
        "tuning_job": best.tuning_job_name,
        "training_job": best.training_job_name,
        "optimizer": best.optimizer,
        "dataset_uri": run.dataset.uri,
        "dataset_version": run.dataset.version_id,
        "run_id": run.run_id,
        "layout": run.settings.layout,
        "strategy": run.settings.strategy,
    }
    if best.bill is not None:
        raw["run_billable_seconds"] = str(best.bill.billable_seconds)
        raw["run_estimated_cost_usd"] = str(best.bill.estimated_cost_usd)
    for name, value in sorted(best.hyperparameters.items()):
        raw[f"hp_{name}"] = value
    items = list(raw.items())[:METADATA_MAX_ENTRIES]
    return {metadata_safe(k, METADATA_KEY_MAX): metadata_safe(str(v), METADATA_VALUE_MAX) for k, v in items}


APPROVED: Final = "Approved"
PENDING: Final = "PendingManualApproval"


class Decision(NamedTuple):
    """The version's approval status, and the sentence the notice gives for it."""

    status: ModelApprovalStatusType
    reason: str


class Champion(NamedTuple):
    """This dataset's approved version, as far as the registry was searched."""

    accuracy: float | None  # what its own approval compared; None: no approved version found
    complete: bool = True  # False: the search stopped before the group's oldest approved version
    measure: str = "validation"  # which accuracy that was: "test" or "validation"


def approval_decision(run: Run, best: BestJob, tested: Tested | None, champion: Champion) -> Decision:
    """Manual by default. `auto` approves only an accuracy a person would trust: the test accuracy
    when the dataset has a test split (never the validation accuracy then), measured on at least
    approval.min_test_images images, from a run validation did not warn about, at or above the
    threshold and better than this dataset's approved version."""
    approval = run.settings.approval
    if approval.mode != "auto":
        return Decision(PENDING, "approval.mode is manual: a person approves every version")
    if tested is not None and tested.status == "Failed":
        return Decision(
            PENDING, f"the test evaluation failed, so there is no unbiased accuracy ({tested.failure_reason})"
        )
    if run.data.warnings:
        return Decision(PENDING, f"validation warned about the dataset ({len(run.data.warnings)} warning(s) below)")
    held_out = test_metrics(tested)
    if run.data.test is not None and held_out is None:
        return Decision(PENDING, "the dataset has a test split but no completed test evaluation")
    if held_out is not None and held_out.samples < approval.min_test_images:
        return Decision(
            PENDING,
            f"the test split has {held_out.samples} images, fewer than approval.min_test_images "
            f"({approval.min_test_images}): its accuracy is too coarse to approve on",
        )
    accuracy = held_out.accuracy if held_out is not None and held_out.accuracy is not None else best.accuracy
    kind = "test" if held_out is not None else "validation"
    measure = f"{kind} accuracy {accuracy:.4f}"
    if accuracy < approval.threshold:
        return Decision(PENDING, f"{measure} is below approval.threshold ({approval.threshold})")
    if not champion.complete:
        return Decision(
            PENDING, f"this dataset's approved version was not found among the newest {CHAMPION_SEARCH} approved ones"
        )
    if champion.accuracy is not None and champion.measure != kind:
        return Decision(
            PENDING,
            f"this dataset's approved version was judged on its {champion.measure} accuracy "
            f"({champion.accuracy:.4f}), this one on its {measure}: not comparable",
        )
    if champion.accuracy is not None and accuracy <= champion.accuracy:
        return Decision(PENDING, f"{measure} does not beat this dataset's approved version ({champion.accuracy:.4f})")
    than = (
        f"beats this dataset's approved version ({champion.accuracy:.4f})"
        if champion.accuracy is not None
        else "this dataset has no approved version yet"
    )
    return Decision(APPROVED, f"{measure} reaches approval.threshold ({approval.threshold}) and {than}")


def model_package_request(
    *,
    group_name: str,
    best: BestJob,
    run: Run,
    metrics_uri: str,
    status: ModelApprovalStatusType,
    tested: Tested | None = None,
) -> CreateModelPackageInputTypeDef:
    held_out = test_metrics(tested)
    test = f", test accuracy {held_out.accuracy:.4f}" if held_out and held_out.accuracy is not None else ""
    description = (
        f"Best of tuning run {run.run_id} on {run.dataset.uri} "
        f"(version {run.dataset.version_id}): validation accuracy {best.accuracy:.4f}{test}"
    )
    return {
        "ModelPackageGroupName": group_name,
        "ModelPackageDescription": description[:1024],
        "InferenceSpecification": {
            "Containers": [{"Image": best.training_image, "ModelDataUrl": best.model_data_url}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": RESPONSE_TYPES,
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}},
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": customer_metadata(best, run, tested),
        # Versioned packages cannot be tagged: no Tags here, on purpose.
    }
