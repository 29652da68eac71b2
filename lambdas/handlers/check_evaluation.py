"""Follow the test split's batch transform; when it is done, score its answers against the test
labels and write the evaluation document. Stops a transform that outlives evaluation_max_seconds."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.start_evaluation import delete_model, read_test_items
from pipeline.aws import clients, s3_layout
from pipeline.aws.errors import classified_aws_errors, is_transient
from pipeline.aws.observe import logger, metrics, tracer
from pipeline.contract import Evaluation, Run, Tested
from pipeline.evaluation.transform import answer_keys, predicted_class, score
from pipeline.step_inputs import CheckEvaluationInput

READ_WORKERS = 32  # answers read side by side: one object per test image


def follow(run: Run, evaluation: Evaluation, sm: Any, now: float) -> Tested | None:
    """The transform's state, or None when it completed and its answers can be scored."""
    described = sm.describe_transform_job(TransformJobName=evaluation.transform_job_name)
    status, limit = described["TransformJobStatus"], run.settings.evaluation_max_seconds
    overdue = now - evaluation.started_at > limit
    if status == "InProgress" and overdue and evaluation.owned:
        sm.stop_transform_job(TransformJobName=evaluation.transform_job_name)
    if status in ("InProgress", "Stopping"):
        return Tested(status="InProgress")
    if status == "Completed":
        return None
    reason = described.get("FailureReason", "")
    if status == "Stopped" and overdue:
        reason = f"stopped after evaluation_max_seconds ({limit:,} s, cdk.json). Raise it, or use a faster instance"
    return Tested(status="Failed", failure_reason=f"{evaluation.transform_job_name}: {status}. {reason}".strip())


def scored(run: Run, evaluation: Evaluation, s3: Any, bucket: str) -> Tested:
    items = read_test_items(s3, run)
    out_bucket, _, out_prefix = evaluation.output_uri.removeprefix("s3://").partition("/")

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=out_prefix)
    listed = (entry["Key"] for page in pages for entry in page.get("Contents", []))
    answers = answer_keys(listed, out_prefix, [key for key, _ in items], evaluation.output_uri)

    def answer(key: str) -> int:
        body = s3.get_object(Bucket=out_bucket, Key=key)["Body"].read()
        return predicted_class(body, f"s3://{out_bucket}/{key}")

    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        predicted = list(pool.map(answer, [answers[key] for key, _ in items]))
    result = score([label for _, label in items], predicted, run.data.num_classes)
    key = s3_layout.evaluation_key(run.dataset.name, run.run_id)
    document = {**result, "transform_job": evaluation.transform_job_name, "model": evaluation.model_name}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")
    return Tested(
        status="Completed",
        accuracy=result["test_accuracy"],
        samples=result["test_samples"],
        evaluation_uri=f"s3://{bucket}/{key}",
    )


def check_evaluation(run: Run, evaluation: Evaluation, sm: Any, s3: Any, *, bucket: str, now: float) -> Tested:
    with classified_aws_errors():
        try:
            state = follow(run, evaluation, sm, now)
            if state is not None and state.status == "InProgress":
                return state
            tested = state if state is not None else scored(run, evaluation, s3, bucket)
        except Exception as exc:
            # The workflow registers without the evaluation: leave nothing running or behind.
            # A throttled call is retried instead, and finds the transform as it was.
            if evaluation.owned and not (isinstance(exc, ClientError) and is_transient(exc)):
                abandon(sm, evaluation)
            raise
        if evaluation.owned:  # the model served the transform only; the registry keeps its own record
            delete_model(sm, evaluation.model_name)
        return tested


def abandon(sm: Any, evaluation: Evaluation) -> None:
    """Stop the transform if it still runs and delete its model, as far as AWS lets: the error
    that brought us here is the one to report."""
    with contextlib.suppress(ClientError):
        sm.stop_transform_job(TransformJobName=evaluation.transform_job_name)
    with contextlib.suppress(ClientError):
        delete_model(sm, evaluation.model_name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = CheckEvaluationInput.parse(event)
    run = inputs.run
    logger.append_keys(run_id=run.run_id)
    tested = check_evaluation(
        run,
        inputs.evaluation,
        clients.client("sagemaker"),
        clients.client("s3", max_pool_connections=READ_WORKERS + 2),
        bucket=os.environ["ARTIFACTS_BUCKET"],
        now=time.time(),
    )
    if tested.accuracy is not None:
        metrics.add_metric(name="TestAccuracy", unit=MetricUnit.NoUnit, value=tested.accuracy)
    result = dataclasses.asdict(tested)
    logger.info("evaluation", extra=result)
    return result
