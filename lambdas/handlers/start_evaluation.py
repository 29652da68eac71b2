"""Start the held-out test evaluation: a SageMaker model of the best training job, and a batch
transform of the test split's images, tagged with the execution that starts them."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from pipeline.aws import clients, s3_layout
from pipeline.aws.errors import classified_aws_errors, error_code, error_message, is_transient
from pipeline.aws.observe import logger, tracer
from pipeline.aws.tags import EXECUTION_TAG, tags
from pipeline.contract import BestJob, Evaluation, Run
from pipeline.dataset.lst import chunk_lines
from pipeline.dataset.pinning import version_of
from pipeline.evaluation.transform import (
    input_manifest,
    model_request,
    test_items,
    transform_job_name,
    transform_request,
)
from pipeline.step_inputs import StartEvaluationInput

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.type_defs import VpcConfigTypeDef

READ_CHUNK = 1 << 20


def read_test_items(s3: Any, run: Run) -> list[tuple[str, int]]:
    test = run.data.test
    assert test is not None, "the workflow starts an evaluation only for a run with a test split"
    bucket, _, key = test.index_uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key, **version_of(run.data, test.index_uri))["Body"]  # as validated
    return test_items(chunk_lines(body.iter_chunks(READ_CHUNK), test.index_uri), test, run.data.attribute_names)


def model_missing(exc: ClientError) -> bool:
    """SageMaker's answer about a model that is not there (a ValidationException, told by its message)."""
    return "Could not find model" in error_message(exc)


def delete_model(sm: Any, name: str) -> None:
    try:
        sm.delete_model(ModelName=name)
    except ClientError as exc:  # already deleted by an earlier attempt
        if not model_missing(exc):
            raise


def start_evaluation(
    run: Run,
    best: BestJob,
    sm: Any,
    s3: Any,
    *,
    role_arn: str,
    bucket: str,
    kms_key_arn: str | None,
    execution: str,
    vpc_config: VpcConfigTypeDef | None = None,
) -> Evaluation:
    assert run.data.test is not None
    prefix = s3_layout.evaluation_prefix(run.dataset.name, run.run_id)
    keys = [key for key, _ in read_test_items(s3, run)]
    labels = tags(run.dataset.name, run.run_id, execution)
    manifest_uri, output_uri = f"s3://{bucket}/{prefix}input.manifest", f"s3://{bucket}/{prefix}output/"
    with classified_aws_errors(run.settings.evaluation_instance_type, usage="transform"):
        s3.put_object(Bucket=bucket, Key=f"{prefix}input.manifest", Body=input_manifest(run.data.test.prefix_uri, keys))
        try:
            sm.create_model(**model_request(run, best, role_arn=role_arn, vpc_config=vpc_config, tags=labels))
        except ClientError as exc:  # a retry of this step finds its model: models are inert and free
            if "already exist" not in error_message(exc):
                raise
        request = transform_request(
            run, manifest_uri=manifest_uri, output_uri=output_uri, kms_key_arn=kms_key_arn, tags=labels
        )
        started, owned = time.time(), True
        try:
            sm.create_transform_job(**request)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUse":
                if not is_transient(exc):  # the run registers without evaluation: no model left behind
                    delete_model(sm, request["ModelName"])
                raise
            # A retry of this step, or another delivery of the same upload: follow the same job,
            # from when it was created; stop or delete it only if this execution started it.
            described = sm.describe_transform_job(TransformJobName=request["TransformJobName"])
            started = described["CreationTime"].timestamp()
            found = sm.list_tags(ResourceArn=described["TransformJobArn"], MaxResults=50)["Tags"]
            owned = {"Key": EXECUTION_TAG, "Value": execution} in found
    return Evaluation(
        model_name=request["ModelName"],
        transform_job_name=transform_job_name(run.run_id),
        output_uri=output_uri,
        started_at=started,
        owned=owned,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inputs = StartEvaluationInput.parse(event)
    run = inputs.run
    logger.append_keys(run_id=run.run_id)
    evaluation = start_evaluation(
        run,
        inputs.best,
        clients.client("sagemaker"),
        clients.client("s3"),
        role_arn=os.environ["SAGEMAKER_ROLE_ARN"],
        bucket=os.environ["ARTIFACTS_BUCKET"],
        kms_key_arn=os.environ.get("KMS_KEY_ARN") or None,
        execution=inputs.execution,
        vpc_config=json.loads(os.environ["TRAINING_VPC"]) if os.environ.get("TRAINING_VPC") else None,
    )
    result = dataclasses.asdict(evaluation)
    logger.info("evaluation started", extra=result)
    return result
