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
from pipeline.contract import ParentChoice, Run, Tuning
from pipeline.dataset.pinning import pinned_channels
from pipeline.step_inputs import StartTuningInput
from pipeline.tuning import history, warm_start
from pipeline.tuning.request import Destinations, build_tuning_requests

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.type_defs import VpcConfigTypeDef


def read_record(s3: Any, bucket: str, key: str, dataset: str) -> history.RunRecord | None:
    """A registered run's record; None if there is none (never written, or deleted since) or it
    cannot be read as one (logged): a run with no usable history starts cold, it does not fail."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return history.RunRecord.from_dict(json.loads(body), dataset)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("warm start skips an unreadable run record", extra={"key": key, "error": repr(exc)})
        return None


def similar_records(s3: Any, bucket: str, num_classes: int, layout: str) -> list[history.RunRecord]:
    """The latest registered runs of the datasets with `num_classes` classes and this layout,
    newest first, at most history.MAX_RECORDS_READ of them (one GetObject each)."""
    prefix = s3_layout.similar_runs_prefix(num_classes, layout)
    listed = [
        obj
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".json")
    ]
    listed.sort(key=lambda obj: obj["LastModified"], reverse=True)
    records = []
    for obj in listed[: history.MAX_RECORDS_READ]:
        dataset = obj["Key"][len(prefix) : -len(".json")]
        record = read_record(s3, bucket, obj["Key"], dataset)
        if record:
            records.append(record)
    return records


def candidates_for(s3: Any, bucket: str, run: Run) -> list[history.Candidate]:
    """The earlier runs this run may warm-start from, best first (`pipeline.tuning.history`)."""
    if run.settings.warm_start == "off" or run.settings.layout not in history.WARM_LAYOUTS:
        return []
    with classified_aws_errors():  # S3 throttling or a 5xx: the workflow retries the step
        previous = read_record(s3, bucket, s3_layout.previous_run_key(run.dataset.name), run.dataset.name)
        auto = run.settings.warm_start == "auto"
        others = similar_records(s3, bucket, run.data.num_classes, run.settings.layout) if auto else []
    return history.candidates(run, previous, others)


def parents_sagemaker_accepts(
    sm: Any, candidates: list[history.Candidate], requests: list[dict[str, Any]], run_id: str
) -> tuple[dict[str, list[str]], list[ParentChoice]]:
    """Each job's parents, best candidate first, that SageMaker would take (`pipeline.tuning.
    warm_start`): up to history.MAX_PARENTS, or the dataset's previous run alone. A parent it would
    refuse, or that no longer exists, is left out with its reason and the next candidate is tried,
    up to history.MAX_DESCRIBED per job; a job with none starts cold rather than the run failing."""
    accepted: dict[str, list[str]] = {}
    weighed: list[ParentChoice] = []
    described: dict[str, dict[str, Any] | None] = {}
    for request in requests:
        name = request["HyperParameterTuningJobName"]
        kept: list[str] = []
        launched = tried = 0
        for candidate in candidates:
            parent = history.jobs_for(candidate.record, [name], run_id).get(name)
            if parent is None:
                continue
            if tried == history.MAX_DESCRIBED:
                break
            tried += 1
            if parent not in described:
                described[parent] = describe_parent(sm, parent)
            answer = described[parent]
            reason = warm_start.refusal(answer, request, launched) if answer else "it does not exist any more"
            if answer is None or reason:
                logger.warning(
                    "warm start leaves a parent out", extra={"job": name, "parent": parent, "reason": reason}
                )
                weighed.append(ParentChoice(name, parent, taken=False, why=reason or "it does not exist any more"))
                continue
            kept.append(parent)
            weighed.append(ParentChoice(name, parent, taken=True, why=candidate.why))
            launched += sum(answer.get("TrainingJobStatusCounters", {}).values())
            if candidate.previous or len(kept) == history.MAX_PARENTS:
                break
        if kept:
            accepted[name] = kept
    return accepted, weighed


def describe_parent(sm: Any, name: str) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFound":
            raise
        return None  # deleted since, or recorded in another account or region
    return answer


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


def requests_for(
    run: Run, sm: Any, s3: Any, bucket: str, dest: Destinations, execution: str
) -> tuple[list[dict[str, Any]], list[ParentChoice]]:
    """The run's CreateHyperParameterTuningJob requests, warm-started from the platform's history
    as its settings allow; and the parents weighed."""
    labels = tags(run.dataset.name, run.run_id, execution)
    requests = build_tuning_requests(run.run_id, run.settings, run.data, dest, tags=labels)
    candidates = candidates_for(s3, bucket, run)
    if not candidates:
        return requests, []
    with classified_aws_errors(run.settings.instance_type, quota_usage(run)):
        parents, weighed = parents_sagemaker_accepts(sm, candidates, requests, run.run_id)
    warm = build_tuning_requests(run.run_id, run.settings, run.data, dest, warm_start_parents=parents, tags=labels)
    return warm, weighed


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
    requests, weighed = requests_for(run, sm, s3, bucket, dest, execution)
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
    return Tuning(
        job_names=names,
        started=tuple(started),
        already_started=tuple(already),
        output_uri=dest.output_uri,
        warm_start=tuple(weighed),
    )


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
