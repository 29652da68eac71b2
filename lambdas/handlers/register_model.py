"""Register the best training job as a new version in the model package group."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients
from pipeline.best_job import Best
from pipeline.errors import classified_aws_errors
from pipeline.naming import previous_run_key
from pipeline.registry import approval_status, metrics_document, model_package_request
from pipeline.telemetry import SERVICE

logger = Logger(service=SERVICE)


def current_approved_accuracy(sm: Any, group: str) -> float | None:
    listed = sm.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        return None
    package = sm.describe_model_package(ModelPackageName=listed[0]["ModelPackageArn"])
    value = package.get("CustomerMetadataProperties", {}).get("validation_accuracy")
    return float(value) if value is not None else None


def register(
    run: dict[str, Any], best_dict: dict[str, Any], sm: Any, s3: Any, *, group: str, bucket: str
) -> dict[str, Any]:
    best = Best(
        tuning_job_name=best_dict["tuning_job_name"],
        training_job_name=best_dict["training_job_name"],
        accuracy=best_dict["accuracy"],
        hyperparameters=best_dict["hyperparameters"],
        definition_name=best_dict.get("definition_name"),
    )
    context = {**run, "best": best_dict}
    name, rid = run["dataset"]["name"], run["run_id"]
    metrics_key = f"metrics/{name}/{rid}/metrics.json"
    metrics_uri = f"s3://{bucket}/{metrics_key}"
    with classified_aws_errors():
        s3.put_object(
            Bucket=bucket,
            Key=metrics_key,
            Body=json.dumps(metrics_document(best, context), indent=2).encode(),
            ContentType="application/json",
        )
        approval = run["settings"]["approval"]
        current = current_approved_accuracy(sm, group) if approval["mode"] == "auto" else None
        status = approval_status(approval["mode"], approval["threshold"], best.accuracy, current)
        request = model_package_request(
            group_name=group,
            best=best,
            run=context,
            image_uri=best_dict["training_image"],
            model_data_url=best_dict["model_data_url"],
            metrics_uri=metrics_uri,
            status=status,
        )
        # The same run retried registers once: the run id is the idempotency token.
        arn = sm.create_model_package(ClientToken=rid, **request)["ModelPackageArn"]
        s3.put_object(
            Bucket=bucket,
            Key=previous_run_key(name),
            Body=json.dumps(
                {"run_id": rid, "layout": run["settings"]["layout"], "tuning_jobs": run["tuning"]["job_names"]}
            ).encode(),
            ContentType="application/json",
        )
    return {"model_package_arn": arn, "approval_status": status, "metrics_uri": metrics_uri}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = {**event["run"], "tuning": event["tuning"]}
    logger.append_keys(run_id=run["run_id"])
    result = register(
        run,
        event["best"],
        clients.client("sagemaker"),
        clients.client("s3"),
        group=os.environ["MODEL_PACKAGE_GROUP"],
        bucket=os.environ["ARTIFACTS_BUCKET"],
    )
    logger.info("model registered", extra=result)
    return result
