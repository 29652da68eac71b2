"""Choose the best training job across the run's tuning jobs, find its model artifact, and add up the bill.

Bounded for the largest run (750 training jobs): the bill is read with concurrent
DescribeTrainingJob calls until a deadline short of the function's timeout, and is best effort:
what was not counted by then is reported as such and never delays or blocks registration.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import clients
from pipeline.best_job import choose_best, optimizer_of
from pipeline.errors import classified_aws_errors
from pipeline.telemetry import METRICS_NAMESPACE, SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
BILLING_WORKERS = 16
# Left for registration's inputs to be returned after the bill is cut short.
DEADLINE_MARGIN_SECONDS = 10


def training_jobs(job_names: list[str], sm: Any) -> list[str]:
    return [
        summary["TrainingJobName"]
        for name in job_names
        for page in sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 100}
        )
        for summary in page["TrainingJobSummaries"]
    ]


def billable_seconds(job_names: list[str], sm: Any, deadline: float | None = None) -> dict[str, Any]:
    """BillableTimeInSeconds summed over the run's training jobs counted before `deadline` (monotonic)."""
    try:
        names = training_jobs(job_names, sm)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("bill not read: cannot list the training jobs", extra={"error": str(exc)})
        return {"seconds": 0, "counted": 0, "jobs": None}

    def billed(name: str) -> int:
        return int(sm.describe_training_job(TrainingJobName=name).get("BillableTimeInSeconds", 0))

    pool = ThreadPoolExecutor(max_workers=BILLING_WORKERS)
    futures = [pool.submit(billed, name) for name in names]
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    done, _ = wait(futures, timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    counted = [f.result() for f in done if f.exception() is None]
    return {"seconds": sum(counted), "counted": len(counted), "jobs": len(names)}


def best_of_run(
    job_names: list[str], sm: Any, price_per_hour: float | None = None, deadline: float | None = None
) -> dict[str, Any]:
    with classified_aws_errors():
        describes = [sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n) for n in job_names]
        best = choose_best(describes)
        training = sm.describe_training_job(TrainingJobName=best.training_job_name)
    usage: dict[str, Any] = {}
    if price_per_hour is not None:
        bill = billable_seconds(job_names, sm, deadline)
        usage = {
            "run_billable_seconds": bill["seconds"],
            "run_estimated_cost_usd": round(bill["seconds"] / 3600 * price_per_hour, 2),
            "run_billed_jobs": bill["counted"],
            "run_training_jobs": bill["jobs"],
            "run_billing_complete": bill["jobs"] is not None and bill["counted"] == bill["jobs"],
        }
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
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    result = best_of_run(event["tuning"]["job_names"], clients.client("sagemaker"), price, deadline)
    metrics.add_metric(name="BestValidationAccuracy", unit=MetricUnit.NoUnit, value=result["accuracy"])
    metrics.add_metric(name="RunBillableSeconds", unit=MetricUnit.Seconds, value=result.get("run_billable_seconds", 0))
    if not result.get("run_billing_complete", True):
        logger.warning("bill incomplete", extra={k: v for k, v in result.items() if k.startswith("run_")})
    logger.info("best training job", extra=result)
    return result
