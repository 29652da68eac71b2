"""Held-out test evaluation of the chosen model: pure functions.

When a dataset has a test split, the workflow turns the best training job into a SageMaker model,
runs a batch transform over the test images (the algorithm's inference takes
`application/x-image` and answers a JSON list of class probabilities, "Image classification
algorithm" page), and scores the answers against the test labels. The test images were seen
by no training job and by no choice of hyperparameters, so their accuracy is not inflated by
picking the best of many validation scores.

Dataset layout: image files `test/` + `test_lst/test.lst`, or an augmented manifest
`test.manifest`; like the other splits, inside the dataset's prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from pipeline.aws.errors import EvaluationIncomplete
from pipeline.contract import BestJob, Run, TestSplit
from pipeline.dataset.augmented import parse_record
from pipeline.dataset.lst import parse_line
from pipeline.settings.limits import DEFAULT_PAYLOAD_MB, MAX_PAYLOAD_MB, MB

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.literals import TransformInstanceTypeType
    from mypy_boto3_sagemaker.type_defs import (
        CreateModelInputTypeDef,
        CreateTransformJobRequestTypeDef,
        TagTypeDef,
        TransformOutputTypeDef,
        VpcConfigTypeDef,
    )

Item = tuple[str, int]  # an image's key relative to the split's prefix, and its class

IMAGE_CONTENT_TYPE = "application/x-image"
ANSWER_CONTENT_TYPE = "application/json"
OUTPUT_SUFFIX = ".out"  # batch transform: one answer per input object, its key + ".out"


def model_name(run_id: str) -> str:
    """The SageMaker model of the run's best training job (ModelName: at most 63 characters)."""
    return f"{run_id}-best"


def transform_job_name(run_id: str) -> str:
    return f"{run_id}-test"


def input_manifest(prefix_uri: str, relative_keys: list[str]) -> bytes:
    """A batch transform ManifestFile: the common prefix, then each object's key below it."""
    return json.dumps([{"prefix": prefix_uri}, *relative_keys]).encode()


def model_request(
    run: Run, best: BestJob, *, role_arn: str, vpc_config: VpcConfigTypeDef | None, tags: list[TagTypeDef]
) -> CreateModelInputTypeDef:
    request: CreateModelInputTypeDef = {
        "ModelName": model_name(run.run_id),
        "PrimaryContainer": {"Image": best.training_image, "ModelDataUrl": best.model_data_url},
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": True,
        "Tags": tags,
    }
    if vpc_config is not None:
        request["VpcConfig"] = vpc_config
    return request


def transform_request(
    run: Run, *, manifest_uri: str, output_uri: str, kms_key_arn: str | None, tags: list[TagTypeDef]
) -> CreateTransformJobRequestTypeDef:
    output: TransformOutputTypeDef = {"S3OutputPath": output_uri, "Accept": ANSWER_CONTENT_TYPE, "AssembleWith": "None"}
    if kms_key_arn:
        output["KmsKeyId"] = kms_key_arn
    # The settings' instance type is one of the API's enum: settings/keys.py accepts only
    # limits.TRANSFORM_INSTANCE_TYPES, botocore's TransformInstanceType.
    instance_type = cast("TransformInstanceTypeType", run.settings.evaluation_instance_type)
    request: CreateTransformJobRequestTypeDef = {
        "TransformJobName": transform_job_name(run.run_id),
        "ModelName": model_name(run.run_id),
        # One image per request: the algorithm's inference takes one image per invocation.
        "BatchStrategy": "SingleRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest_uri}},
            "ContentType": IMAGE_CONTENT_TYPE,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": output,
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1},
        "Tags": tags,
    }
    # MaxPayloadInMB takes the largest test image; above the default, MaxConcurrentTransforms keeps
    # their product within 100, so CreateTransformJob checks the pair, not the container at run time.
    payload = payload_mb(run.data.test.largest_image_bytes if run.data.test else 0)
    request["MaxPayloadInMB"] = payload
    if payload != DEFAULT_PAYLOAD_MB:
        request["MaxConcurrentTransforms"] = max(1, MAX_PAYLOAD_MB // payload)
    return request


def payload_mb(largest_image_bytes: int) -> int:
    """The MaxPayloadInMB that takes the largest test image: the default, or more (whole MB)."""
    return max(DEFAULT_PAYLOAD_MB, -(-largest_image_bytes // MB))


def predicted_class(answer: bytes, where: str) -> int:
    """The class with the highest probability in one answer of the algorithm's inference."""
    try:
        probabilities = json.loads(answer)
        if isinstance(probabilities, dict):  # {"prediction": [...]} in some container versions
            probabilities = probabilities.get("prediction", probabilities.get("predictions"))
        values = [float(p) for p in probabilities]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not a JSON list of class probabilities ({exc})") from None
    if not values:
        raise ValueError(f"{where}: an empty list of class probabilities")
    return max(range(len(values)), key=values.__getitem__)


def answer_keys(listed: Iterable[str], out_prefix: str, wanted: list[str], where: str) -> dict[str, str]:
    """Each test image's answer object, from the keys listed under the transform's output prefix
    (`<image key>.out`). Raises EvaluationIncomplete, with what is missing and what was found."""
    found = {key.removeprefix(out_prefix): key for key in listed if key.startswith(out_prefix)}
    answers = {image: found.get(image + OUTPUT_SUFFIX, "") for image in wanted}
    missing = [image for image, key in answers.items() if not key]
    if missing:
        seen = ", ".join(sorted(found)[:3]) or "nothing"
        raise EvaluationIncomplete(
            f"{len(missing)} of {len(wanted)} test images have no answer under {where} (expected "
            f"{missing[0]}{OUTPUT_SUFFIX}); the transform wrote {len(found)} object(s): {seen}. "
            "Was the test index changed during the run?"
        )
    return answers


def score(truth: list[int], predicted: list[int], num_classes: int) -> dict[str, Any]:
    """Test accuracy, accuracy per class (None for a class without test images) and the confusion
    matrix, rows the true class and columns the predicted one."""
    confusion = [[0] * num_classes for _ in range(num_classes)]
    per_truth = [0] * num_classes
    for t, p in zip(truth, predicted, strict=True):
        per_truth[t] += 1
        if 0 <= p < num_classes:  # an answer outside the classes is wrong, and has no column
            confusion[t][p] += 1
    correct = sum(confusion[c][c] for c in range(num_classes))
    return {
        "test_accuracy": correct / len(truth) if truth else 0.0,
        "test_samples": len(truth),
        "per_class_accuracy": [confusion[c][c] / per_truth[c] if per_truth[c] else None for c in range(num_classes)],
        "confusion_matrix": confusion,
    }


def test_items(lines: Iterable[tuple[int, str]], test: TestSplit, attribute_names: tuple[str, ...]) -> list[Item]:
    """The test split's (key relative to its prefix, label) pairs, from its `.lst` or its manifest.
    Validation checked every line; a line that no longer parses fails loudly here."""
    items: list[Item] = []
    if test.index_uri.endswith(".manifest"):
        label_attribute = attribute_names[1]
        for number, line in lines:
            record = parse_record(
                number, line, test.index_uri, label_attribute=label_attribute, dataset_uri=test.prefix_uri
            )
            if record is not None:
                items.append((record.source_ref.removeprefix(test.prefix_uri), record.label))
        return items
    for number, line in lines:
        entry = parse_line(number, line, test.index_uri)
        if entry is not None:
            items.append((entry.path, entry.label))
    return items
