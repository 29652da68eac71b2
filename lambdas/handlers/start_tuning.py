"""Start the run's tuning job(s), idempotently: a repeated event finds them already started."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from pipeline.aws import clients, s3_layout
from pipeline.aws.errors import TransientAwsError, classified_aws_errors, error_code
from pipeline.aws.image_uri import training_image_uri
from pipeline.aws.observe import logger, tracer
from pipeline.aws.tags import owned_by, tags
from pipeline.contract import Run, Tuning
from pipeline.dataset.pinning import pinned_channels
from pipeline.step_inputs import StartTuningInput
from pipeline.tuning import warm_start
from pipeline.tuning.request import Destinations, build_tuning_requests

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.type_defs import VpcConfigTypeDef


def warm_start_parents(s3: Any, bucket: str, run: Run, job_names: list[str]) -> dict[str, list[str]]:
    """Map this run's tuning jobs to the same layout's jobs of the dataset's previous run."""
    try:
        body = s3.get_object(Bucket=bucket, Key=s3_layout.previous_run_key(run.dataset.name))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return {}
        raise
    previous = json.loads(body)
    if previous.get("layout") != run.settings.layout or previous.get("run_id") == run.run_id:
        return {}
    parents: dict[str, list[str]] = {}
    for name in job_names:
        suffix = name[len(run.run_id) :]  # "" (one job) or "-<optimizer code>"
        for old in previous.get("tuning_jobs", []):
            if old[len(previous["run_id"]) :] == suffix:
                parents[name] = [old]
    return parents


def parents_sagemaker_accepts(
    sm: Any, parents: dict[str, list[str]], requests: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """Keep the parents SageMaker would take (`pipeline.tuning.warm_start`); a job whose parent it would
    refuse starts cold, with a warning in the log, rather than the run failing."""
    accepted: dict[str, list[str]] = {}
    for request in requests:
        name = request["HyperParameterTuningJobName"]
        kept: list[str] = []
        launched = 0
        for parent in parents.get(name, []):
            try:
                described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=parent)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFound":
                    raise
                described = None  # deleted since, or recorded in another account or region
            reason = warm_start.refusal(described, request, launched) if described else "it does not exist"
            if reason:
                logger.warning(
                    "warm start leaves a parent out", extra={"job": name, "parent": parent, "reason": reason}
                )
                continue
            kept.append(parent)
            launched += sum(described.get("TrainingJobStatusCounters", {}).values())
        if kept:
            accepted[name] = kept
    return accepted


def stop_quietly(sm: Any, names: list[str]) -> None:
    """Stop these tuning jobs, logging (not raising) what cannot be stopped: the error that
    brought us here is the one to report, and StopOrphans tries again after the failure."""
    for name in names:
        try:
            sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        except ClientError as exc:
            logger.warning("could not stop a tuning job of a failed start", extra={"job": name, "error": str(exc)})


def quota_usage(run: Run) -> str:
    """The Service Quotas usage a refusal names: spot training has a quota of its own."""
    return "spot training" if run.settings.use_spot else "training"


def requests_for(run: Run, sm: Any, s3: Any, bucket: str, dest: Destinations, execution: str) -> list[dict[str, Any]]:
    """The run's CreateHyperParameterTuningJob requests, warm-started from its previous run if asked."""
    labels = tags(run.dataset.name, run.run_id, execution)
    requests = build_tuning_requests(run.run_id, run.settings, run.data, dest, tags=labels)
    if not run.settings.warm_start:
        return requests
    parents = warm_start_parents(s3, bucket, run, [r["HyperParameterTuningJobName"] for r in requests])
    with classified_aws_errors(run.settings.instance_type, quota_usage(run)):
        parents = parents_sagemaker_accepts(sm, parents, requests)
    return build_tuning_requests(run.run_id, run.settings, run.data, dest, warm_start_parents=parents, tags=labels)


def start_tuning(
    run: Run,
    sm: Any,
    s3: Any,
    *,
    role_arn: str,
    bucket: str,
    kms_key_arn: str | None,
    region: str,
    execution: str,
    vpc_config: VpcConfigTypeDef | None = None,
) -> Tuning:
    """Create the run's tuning jobs, tagged with the execution that creates them.

    `started` lists the jobs this execution owns (created now, or by an earlier attempt of
    this same execution); `already_started` those another execution of the same upload owns."""
    dest = Destinations(
        role_arn=role_arn,
        image_uri=training_image_uri(region),
        output_uri=s3_layout.tuning_output_uri(bucket, run.dataset.name, run.run_id),
        checkpoint_uri=s3_layout.checkpoint_uri(bucket, run.dataset.name, run.run_id),
        kms_key_arn=kms_key_arn,
        vpc_config=vpc_config,
    )
    with classified_aws_errors():  # the jobs read the indexes as validated, copied where uploaders cannot write
        run = dataclasses.replace(run, data=pinned_channels(run.data, run.dataset, run.run_id, s3, bucket))
    requests = requests_for(run, sm, s3, bucket, dest, execution)
    started: list[str] = []
    already: list[str] = []
    try:
        with classified_aws_errors(run.settings.instance_type, quota_usage(run)):
            for request in requests:
                job = request["HyperParameterTuningJobName"]
                try:
                    sm.create_hyper_parameter_tuning_job(**request)
                    started.append(job)
                except ClientError as exc:
                    if error_code(exc) != "ResourceInUse":
                        raise
                    # Our own earlier attempt, retried, or another delivery of the same upload.
                    (started if owned_by(sm, job, execution) else already).append(job)
    except TransientAwsError:
        raise  # the workflow retries this step; the retry finds these jobs and owns them
    except Exception:
        # The run fails here, before the workflow knows its jobs: stop the ones just created.
        stop_quietly(sm, started)
        raise
    names = tuple(r["HyperParameterTuningJobName"] for r in requests)
    return Tuning(job_names=names, started=tuple(started), already_started=tuple(already), output_uri=dest.output_uri)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = StartTuningInput.parse(event)
    run = inputs.run
    logger.append_keys(run_id=run.run_id)
    result = start_tuning(
        run,
        clients.client("sagemaker"),
        clients.client("s3"),
        role_arn=os.environ["SAGEMAKER_ROLE_ARN"],
        bucket=os.environ["ARTIFACTS_BUCKET"],
        kms_key_arn=os.environ.get("KMS_KEY_ARN") or None,
        region=os.environ["AWS_REGION"],
        execution=inputs.execution,
        vpc_config=json.loads(os.environ["TRAINING_VPC"]) if os.environ.get("TRAINING_VPC") else None,
    ).to_dict()
    logger.info("tuning jobs", extra=result)
    return result
