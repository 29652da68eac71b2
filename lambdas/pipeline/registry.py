"""Model Registry entry for the best training job: pure functions."""

from __future__ import annotations

import unicodedata
from typing import Any

from pipeline.contract import BestJob, Run

CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image"]
RESPONSE_TYPES = ["application/json"]
METADATA_EXTRA_CHARS = set("_.:/=+-@")
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
METADATA_MAX_ENTRIES = 50


def metadata_safe(text: str, limit: int) -> str:
    """Keep CustomerMetadataProperties within `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`: others become '_'."""
    out = "".join(c if unicodedata.category(c)[0] in "LZN" or c in METADATA_EXTRA_CHARS else "_" for c in text)
    return (out or "_")[:limit]


def metrics_document(best: BestJob, run: Run) -> dict[str, Any]:
    """SageMaker model-quality JSON (read by Studio) plus where the model came from."""
    return {
        "multiclass_classification_metrics": {
            "accuracy": {"value": best.accuracy, "standard_deviation": "NaN"},
        },
        "validation_accuracy": best.accuracy,
        "hyperparameters": best.hyperparameters,
        "optimizer": best.optimizer,
        "tuning_job_name": best.tuning_job_name,
        "training_job_name": best.training_job_name,
        "dataset_uri": run.dataset.uri,
        "dataset_version": run.dataset.version_id,
    }


def customer_metadata(best: BestJob, run: Run) -> dict[str, str]:
    raw: dict[str, str] = {
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


def approval_status(mode: str, threshold: float, accuracy: float, current_approved: float | None) -> str:
    """Manual by default; `auto` approves when good enough and better than the approved version."""
    if mode == "auto" and accuracy >= threshold and (current_approved is None or accuracy > current_approved):
        return "Approved"
    return "PendingManualApproval"


def model_package_request(*, group_name: str, best: BestJob, run: Run, metrics_uri: str, status: str) -> dict[str, Any]:
    description = (
        f"Best of tuning run {run.run_id} on {run.dataset.uri} "
        f"(version {run.dataset.version_id}): validation accuracy {best.accuracy:.4f}"
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
        "CustomerMetadataProperties": customer_metadata(best, run),
        # Versioned packages cannot be tagged: no Tags here, on purpose.
    }
