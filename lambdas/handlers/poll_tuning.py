"""Report the run's tuning jobs' state in a few fields (never whole describe responses)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.aws import clients
from pipeline.aws.errors import classified_aws_errors
from pipeline.aws.observe import logger, metrics, tracer
from pipeline.contract import Poll
from pipeline.evaluation.best_job import failure_reason, job_summary, overall_status
from pipeline.step_inputs import PollTuningInput


def poll(job_names: tuple[str, ...], sm: Any) -> Poll:
    with classified_aws_errors():
        summaries = [
            job_summary(sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n)) for n in job_names
        ]
    status = overall_status(summaries)
    return Poll(status=status, jobs=summaries, failure_reason=failure_reason(summaries) if status == "Failed" else "")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = PollTuningInput.parse(event)
    logger.append_keys(run_id=inputs.run_id)
    result = poll(inputs.tuning.job_names, clients.client("sagemaker"))
    # Embedded-metric-format lines: the dashboard's "in flight" graphs, no PutMetricData call.
    metrics.add_metric(
        name="TuningJobsInFlight",
        unit=MetricUnit.Count,
        value=sum(j["status"] in ("InProgress", "Stopping") for j in result.jobs),
    )
    metrics.add_metric(
        name="TrainingJobsInProgress", unit=MetricUnit.Count, value=sum(j["in_progress"] for j in result.jobs)
    )
    logger.info("tuning status", extra={"status": result.status, "jobs": result.jobs})
    return dataclasses.asdict(result)
