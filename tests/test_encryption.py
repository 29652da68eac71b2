"""Every request field that can name a KMS key, found by walking botocore's own model of each API
the Lambdas write data with (not by reading our code): each one is the deployment's data key in
the request we build, or it is listed in NOT_SET with the reason, and then it is checked absent.

What the requests write: the tuning jobs' models and output (OutputDataConfig), the test
transform's answers (TransformOutput), the registry version (CreateModelPackage). Checkpoints,
metrics and evaluation documents are S3 objects written without a key of their own: the bucket's
default encryption applies, checked at the end against the synthesized template.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Template

from pipeline.evaluation.registry import model_package_request
from pipeline.evaluation.transform import transform_request
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.request import build_tuning_requests
from tests.sample_request import DATA
from tests.sample_request import DEST as SAMPLE_DEST
from tests.sample_run import BEST
from tests.test_evaluation import TESTED_RUN

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DEST = dataclasses.replace(SAMPLE_DEST, kms_key_arn=KEY)

# The storage-volume fields: botocore's documentation of each says "You can't request a
# VolumeKmsKeyId when using an instance type with local storage", and every GPU type the
# algorithm trains on (ml.p3dn, ml.g4dn, ml.g5: DOMAIN.md) has local NVMe storage, "encrypted
# using a hardware module on the instance". The transform's type is the deployment's to choose,
# and may have local storage too; its volume holds the model and images while the job runs.
LOCAL_STORAGE = "You can't request a <code>VolumeKmsKeyId</code> when using an instance type with local storage"
NOT_SET = {
    "CreateHyperParameterTuningJob": {
        "TrainingJobDefinition.ResourceConfig.VolumeKmsKeyId": LOCAL_STORAGE,
        "TrainingJobDefinitions[].ResourceConfig.VolumeKmsKeyId": LOCAL_STORAGE,
        "TrainingJobDefinition.HyperParameterTuningResourceConfig.VolumeKmsKeyId": "not used: ResourceConfig is",
        "TrainingJobDefinitions[].HyperParameterTuningResourceConfig.VolumeKmsKeyId": "not used: ResourceConfig is",
    },
    "CreateTransformJob": {
        "TransformResources.VolumeKmsKeyId": LOCAL_STORAGE,
        "DataCaptureConfig.KmsKeyId": "no data capture is asked for",
    },
    "CreateModelPackage": {
        # The version holds metrics, hyperparameters and the artifact's URI; the artifact itself
        # is the tuning output, encrypted with the data key above.
        "SecurityConfig.KmsKeyId": "no data in the package itself",
        "ValidationSpecification.ValidationProfiles[].TransformJobDefinition.TransformOutput.KmsKeyId": "not sent",
        "ValidationSpecification.ValidationProfiles[].TransformJobDefinition.TransformResources.VolumeKmsKeyId": (
            "not sent"
        ),
    },
}


def kms_fields(shape: Any, path: tuple[str, ...] = (), seen: frozenset[str] = frozenset()) -> Iterator[str]:
    """The paths of every member whose name says it holds a KMS key, lists written `name[]`."""
    if shape.type_name == "structure" and shape.name not in seen:
        for name, member in shape.members.items():
            if "kms" in name.lower():
                yield ".".join((*path, name))
            yield from kms_fields(member, (*path, name), seen | {shape.name})
    elif shape.type_name == "list":
        yield from kms_fields(shape.member, (*path[:-1], path[-1] + "[]"), seen)


def values_at(request: Any, path: list[str]) -> list[Any]:
    """What the request holds at `path` (every element of a list), [] when it holds nothing."""
    if not path:
        return [request]
    head, rest = path[0], path[1:]
    many = head.endswith("[]")
    value = request.get(head.removesuffix("[]")) if isinstance(request, dict) else None
    if value is None:
        return []
    return [v for item in value for v in values_at(item, rest)] if many else values_at(value, rest)


def tuning_requests() -> list[dict[str, Any]]:
    requests = []
    for layout in ("definitions", "job_per_optimizer", "flat"):
        settings = dataclasses.replace(TuningSettings(), layout=layout, max_parallel_jobs=4)
        requests += build_tuning_requests("r", settings, DATA, DEST)
    return requests


def requests_of(operation: str) -> list[dict[str, Any]]:
    if operation == "CreateHyperParameterTuningJob":
        return tuning_requests()
    if operation == "CreateTransformJob":
        return [
            transform_request(TESTED_RUN, manifest_uri="s3://a/m", output_uri="s3://a/o/", kms_key_arn=KEY, tags=[])
        ]
    return [model_package_request(group_name="g", best=BEST, run=TESTED_RUN, metrics_uri="s3://a/m", status="x")]


@pytest.mark.parametrize("operation", sorted(NOT_SET))
def test_every_kms_field_of_botocores_model_carries_the_data_key_or_a_reason(operation: str) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker").operation_model(operation)
    fields = list(kms_fields(model.input_shape))
    assert set(NOT_SET[operation]) <= set(fields), "a field listed here is no longer in the API"
    checked = set()
    for request in requests_of(operation):
        for field in fields:
            found = values_at(request, field.split("."))
            if field in NOT_SET[operation]:
                assert found == [], f"{operation} sets {field}; take it out of NOT_SET"
            elif parents := values_at(request, field.split(".")[:-1]):  # a part this request sends
                assert len(found) == len(parents), f"{operation} leaves {field} unset"
                assert all(value == KEY for value in found), f"{operation}: {field} is not the data key"
                checked.add(field)
    # Every field botocore knows is either set in some request or explained.
    assert checked | set(NOT_SET[operation]) == set(fields)


def test_the_local_storage_reason_is_the_apis_own_words() -> None:
    sagemaker = botocore.session.get_session().get_service_model("sagemaker")
    for shape in ("ResourceConfig", "TransformResources"):
        assert LOCAL_STORAGE in sagemaker.shape_for(shape).members["VolumeKmsKeyId"].documentation


def test_the_walk_finds_the_output_keys_it_must() -> None:
    sagemaker = botocore.session.get_session().get_service_model("sagemaker")
    transform = list(kms_fields(sagemaker.operation_model("CreateTransformJob").input_shape))
    assert "TransformOutput.KmsKeyId" in transform
    tuning = list(kms_fields(sagemaker.operation_model("CreateHyperParameterTuningJob").input_shape))
    assert {
        "TrainingJobDefinition.OutputDataConfig.KmsKeyId",
        "TrainingJobDefinitions[].OutputDataConfig.KmsKeyId",
    } <= (set(tuning))


def test_the_s3_writes_name_no_key_so_the_buckets_default_is_the_data_key(synth) -> None:
    # PutObject can name a key (botocore: SSEKMSKeyId); the handlers never do, so every object
    # they and the training jobs write (checkpoints, metrics, evaluation, run records) gets the
    # bucket default: SSE-KMS with the stack's data key, on both data buckets.
    put = botocore.session.get_session().get_service_model("s3").operation_model("PutObject")
    assert "SSEKMSKeyId" in set(kms_fields(put.input_shape))
    template = Template.from_json(synth.storage_template)
    keys = template.find_resources("AWS::KMS::Key")
    (data_key,) = [lid for lid in keys if lid.startswith("DataKey")]
    for name, bucket in template.find_resources("AWS::S3::Bucket").items():
        if not name.startswith(("Datasets", "Artifacts")):
            continue
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [data_key, "Arn"]},
        }, name
