"""Choose the best training job across the run's tuning jobs, find its model artifact, and add up the bill.

Bounded for the largest run (750 training jobs): the bill is read with concurrent
DescribeTrainingJob calls until a deadline short of the function's timeout, and is best effort:
what was not counted by then is reported as such and never delays or blocks registration.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import clients
from pipeline.aws.errors import classified_aws_errors
from pipeline.aws.observe import logger, metrics, tracer
from pipeline.contract import BestJob, Bill
from pipeline.evaluation.best_job import choose_best, optimizer_of
from pipeline.step_inputs import ChooseBestInput

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
    job_names: tuple[str, ...], sm: Any, price_per_hour: float | None = None, deadline: float | None = None
) -> BestJob:
    with classified_aws_errors():
        describes = [sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n) for n in job_names]
        best = choose_best(describes)
        training = sm.describe_training_job(TrainingJobName=best.training_job_name)
    bill = None
    if price_per_hour is not None:
        counted = billable_seconds(list(job_names), sm, deadline)
        bill = Bill(
            billable_seconds=counted["seconds"],
            estimated_cost_usd=round(counted["seconds"] / 3600 * price_per_hour, 2),
            billed_jobs=counted["counted"],
            training_jobs=counted["jobs"],
        )
    return BestJob(
        tuning_job_name=best.tuning_job_name,
        training_job_name=best.training_job_name,
        accuracy=best.accuracy,
        hyperparameters=best.hyperparameters,
        definition_name=best.definition_name,
        optimizer=optimizer_of(best, training.get("HyperParameters", {})),
        model_data_url=training["ModelArtifacts"]["S3ModelArtifacts"],
        training_image=training["AlgorithmSpecification"]["TrainingImage"],
        billable_seconds=training.get("BillableTimeInSeconds", 0),
        bill=bill,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = ChooseBestInput.parse(event)
    logger.append_keys(run_id=inputs.run_id)
    price = inputs.cost.price_per_hour_usd if inputs.cost else None
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    best = best_of_run(inputs.tuning.job_names, clients.client("sagemaker"), price, deadline)
    metrics.add_metric(name="BestValidationAccuracy", unit=MetricUnit.NoUnit, value=best.accuracy)
    billed = best.bill.billable_seconds if best.bill else 0
    metrics.add_metric(name="RunBillableSeconds", unit=MetricUnit.Seconds, value=billed)
    result = best.to_dict()
    if best.bill is not None and not best.bill.complete:
        logger.warning("bill incomplete", extra={k: v for k, v in result.items() if k.startswith("run_")})
    logger.info("best training job", extra=result)
    return result
