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


def best_of_run(job_names: list[str], sm: Any) -> dict[str, Any]:
    with classified_aws_errors():
        describes = [sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n) for n in job_names]
        best = choose_best(describes)
        training = sm.describe_training_job(TrainingJobName=best.training_job_name)
    return {
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
    result = best_of_run(event["tuning"]["job_names"], clients.client("sagemaker"))
    metrics.add_metric(name="BestValidationAccuracy", unit=MetricUnit.NoUnit, value=result["accuracy"])
    metrics.add_metric(name="BillableTrainingSecondsOfBest", unit=MetricUnit.Seconds, value=result["billable_seconds"])
    logger.info("best training job", extra=result)
    return result
