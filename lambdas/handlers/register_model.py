"""Register the best training job as a new version in the model package group."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.aws import clients, s3_layout
from pipeline.aws.errors import classified_aws_errors
from pipeline.aws.observe import logger, tracer
from pipeline.contract import BestJob, Registered, Run, Tested, Tuning
from pipeline.evaluation.registry import (
    CHAMPION_SEARCH,
    METADATA_VALUE_MAX,
    Champion,
    approval_decision,
    metadata_safe,
    metrics_document,
    model_package_request,
)
from pipeline.step_inputs import RegisterModelInput
from pipeline.tuning import history


def champion(sm: Any, group: str, dataset_uri: str, run_id: str) -> Champion:
    """This dataset's newest approved version. One group serves every dataset, so the approved
    versions are read newest first until one names this dataset (its dataset_uri metadata). This
    run's own version, registered by an earlier attempt of this step, is not its champion."""
    wanted, read = metadata_safe(dataset_uri, METADATA_VALUE_MAX), 0
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending"
    )
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if read == CHAMPION_SEARCH:
                return Champion(accuracy=None, complete=False)
            read += 1
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            properties = package.get("CustomerMetadataProperties", {})
            if properties.get("dataset_uri") != wanted or properties.get("run_id") == run_id:
                continue
            # What its own approval compared (test accuracy when it had one); older versions: validation.
            value = properties.get("approval_accuracy", properties.get("validation_accuracy"))
            held_out = "test" if "test_accuracy" in properties else "validation"
            measure = properties.get("approval_measure", held_out)
            return Champion(accuracy=float(value) if value is not None else None, measure=measure)
    return Champion(accuracy=None)


def register(
    run: Run,
    tuning: Tuning,
    best: BestJob,
    sm: Any,
    s3: Any,
    *,
    group: str,
    bucket: str,
    tested: Tested | None = None,
) -> Registered:
    """Write the metrics document, register the model version, and record the run for warm start."""
    name, rid = run.dataset.name, run.run_id
    metrics_key = s3_layout.metrics_key(name, rid)
    metrics_uri = f"s3://{bucket}/{metrics_key}"
    with classified_aws_errors():
        s3.put_object(
            Bucket=bucket,
            Key=metrics_key,
            Body=json.dumps(metrics_document(best, run, tested, tuning), indent=2).encode(),
            ContentType="application/json",
        )
        auto = run.settings.approval.mode == "auto"
        decision = approval_decision(
            run, best, tested, champion(sm, group, run.dataset.uri, run.run_id) if auto else Champion(None)
        )
        status = decision.status
        request = model_package_request(
            group_name=group, best=best, run=run, metrics_uri=metrics_uri, status=status, tested=tested
        )
        # The same run retried registers once: the run id is the idempotency token.
        arn = sm.create_model_package(ClientToken=rid, **request)["ModelPackageArn"]
        # The run's record, for the warm start of this dataset's next run and of similar datasets'.
        record = json.dumps(history.RunRecord.of(run, tuning.job_names).to_dict()).encode()
        keys = [s3_layout.previous_run_key(name)]
        if run.settings.layout in history.WARM_LAYOUTS:  # a definitions run can be no one's parent
            keys.append(s3_layout.similar_run_key(run.data.num_classes, run.settings.layout, name))
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=record, ContentType="application/json")
    return Registered(
        model_package_arn=arn, approval_status=status, metrics_uri=metrics_uri, approval_reason=decision.reason
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = RegisterModelInput.parse(event)
    run = inputs.run
    logger.append_keys(run_id=run.run_id)
    result = register(
        run,
        inputs.tuning,
        inputs.best,
        clients.client("sagemaker"),
        clients.client("s3"),
        group=os.environ["MODEL_PACKAGE_GROUP"],
        bucket=os.environ["ARTIFACTS_BUCKET"],
        tested=inputs.tested,
    )
    logger.info("model registered", extra=dataclasses.asdict(result))
    return dataclasses.asdict(result)
