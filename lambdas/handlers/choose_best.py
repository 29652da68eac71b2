"""Choose the best training job across the run's tuning jobs and find its model artifact."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients
from pipeline.best_job import choose_best, optimizer_of
from pipeline.errors import classified_aws_errors
from pipeline.telemetry import METRICS_NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


def billable_seconds(job_names: list[str], sm: Any) -> int:
    """BillableTimeInSeconds summed over every training job of the run's tuning jobs."""
    total = 0
    for name in job_names:
        pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 100}
        )
        for page in pages:
            for summary in page["TrainingJobSummaries"]:
                described = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
                total += described.get("BillableTimeInSeconds", 0)
    return total


def best_of_run(job_names: list[str], sm: Any, price_per_hour: float | None = None) -> dict[str, Any]:
    with classified_aws_errors():
        describes = [sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n) for n in job_names]
        best = choose_best(describes)
        training = sm.describe_training_job(TrainingJobName=best.training_job_name)
        total = billable_seconds(job_names, sm) if price_per_hour is not None else None
    usage: dict[str, Any] = {}
    if total is not None and price_per_hour is not None:
        usage = {"run_billable_seconds": total, "run_estimated_cost_usd": round(total / 3600 * price_per_hour, 2)}
    return {
        **usage,
        "tuning_job_name": best.tuning_job_name,
        "training_job_name": best.training_job_name,
        "accuracy": best.accuracy,
        "hyperparameters": best.hyperparameters,
        "definition_name": best.definition_name,
        "optimizer": optimizer_of(best, training.get("HyperParameters", {})),
        "model_data_url": training["ModelArtifacts"]["S3ModelArtifacts"],
        "training_image": training["AlgorithmSpecification"]["TrainingImage"],
        "billable_seconds": training.get("BillableTimeInSeconds", 0),
    }


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event["run_id"])
    price = (event.get("cost") or {}).get("price_per_hour_usd")
    result = best_of_run(event["tuning"]["job_names"], clients.client("sagemaker"), price)
    metrics.add_metric(name="BestValidationAccuracy", unit=MetricUnit.NoUnit, value=result["accuracy"])
    metrics.add_metric(name="RunBillableSeconds", unit=MetricUnit.Seconds, value=result.get("run_billable_seconds", 0))
    logger.info("best training job", extra=result)
    return result
