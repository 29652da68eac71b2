"""The held-out test evaluation: the requests that reach SageMaker, the scores, the limits, and
what a failure or an overdue transform leaves behind. Expected values are computed by hand here
from the documented answer format (a JSON list of class probabilities per image)."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from handlers.check_evaluation import follow
from handlers.handle_failure import stop_evaluation
from handlers.stop_orphans import stop_run_evaluation
from local.api_model import request_errors
from pipeline.aws.errors import EvaluationIncomplete
from pipeline.aws.tags import tags
from pipeline.contract import Evaluation, Tested, TestSplit
from pipeline.evaluation.transform import input_manifest, model_request, predicted_class, score, transform_request
from pipeline.tuning.cost import worst_case
from tests.fakes import Fake
from tests.sample_request import client_error
from tests.sample_run import BEST, RUN

SPLIT = TestSplit("s3://ds/datasets/digits/test_lst/test.lst", "s3://ds/datasets/digits/test/", 3)
TESTED_RUN = dataclasses.replace(RUN, data=dataclasses.replace(RUN.data, test=SPLIT))
LABELS = tags("digits", RUN.run_id, "arn:aws:states:us-east-1:123456789012:execution:sm:e1")


def test_the_model_and_transform_requests_satisfy_the_api_model_and_the_algorithm() -> None:
    model = model_request(TESTED_RUN, BEST, role_arn="arn:aws:iam::123456789012:role/sm", vpc_config=None, tags=LABELS)
    assert request_errors("sagemaker", "CreateModel", model) == []
    assert model["PrimaryContainer"] == {"Image": BEST.training_image, "ModelDataUrl": BEST.model_data_url}
    assert model["EnableNetworkIsolation"] is True
    transform = transform_request(
        TESTED_RUN,
        manifest_uri="s3://art/evaluation/digits/r/input.manifest",
        output_uri="s3://art/evaluation/digits/r/output/",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        tags=LABELS,
    )
    assert request_errors("sagemaker", "CreateTransformJob", transform) == []
    # "Image classification algorithm" page: inference takes application/x-image, one image per request.
    assert transform["TransformInput"]["ContentType"] == "application/x-image"
    assert transform["TransformInput"]["SplitType"] == "None" and transform["BatchStrategy"] == "SingleRecord"
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert transform["TransformResources"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}
    assert transform["ModelName"] == model["ModelName"]


def test_the_input_manifest_is_a_batch_transform_manifest_file() -> None:
    # [{"prefix": ...}, relative keys...]: the ManifestFile shape of the S3DataSource docs.
    assert json.loads(input_manifest("s3://ds/datasets/d/test/", ["a/1.png", "b/2.png"])) == [
        {"prefix": "s3://ds/datasets/d/test/"},
        "a/1.png",
        "b/2.png",
    ]


def test_scores_accuracy_per_class_and_the_confusion_matrix() -> None:
    truth = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 7]  # 7: an answer outside the classes counts as wrong
    result = score(truth, predicted, num_classes=4)
    assert result["test_accuracy"] == 3 / 6
    assert result["test_samples"] == 6
    assert result["per_class_accuracy"] == [2 / 3, 1 / 2, 0.0, None]  # class 3 has no test image
    assert result["confusion_matrix"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_an_answer_is_the_class_of_highest_probability_or_a_clear_error() -> None:
    assert predicted_class(b"[0.1, 0.7, 0.2]", "a.out") == 1
    assert predicted_class(b'{"prediction": [0.6, 0.4]}', "a.out") == 0
    with pytest.raises(ValueError, match=r"^s3://x/a.out: not a JSON list of class probabilities"):
        predicted_class(b"cat", "s3://x/a.out")
    with pytest.raises(ValueError, match="an empty list"):
        predicted_class(b"[]", "a.out")


def test_the_edges_of_scoring_and_reading_answers() -> None:
    # No test image: accuracy 0, no class scored; an answer below 0 is wrong and counted nowhere.
    assert score([], [], num_classes=2) == {
        "test_accuracy": 0.0,
        "test_samples": 0,
        "per_class_accuracy": [None, None],
        "confusion_matrix": [[0, 0], [0, 0]],
    }
    assert score([1, 1], [-1, 1], num_classes=2)["confusion_matrix"] == [[0, 0], [0, 1]]
    with pytest.raises(ValueError):  # as many answers as images, or the scores would lie
        score([0, 1], [0], num_classes=2)
    # Both spellings some container versions use; a tie goes to the lower class, as argmax does.
    assert predicted_class(b'{"predictions": [0.2, 0.8]}', "a.out") == 1
    assert predicted_class(b"[0.5, 0.5, 0.1]", "a.out") == 0
    assert predicted_class(b'["0.1", "0.9"]', "a.out") == 1
    with pytest.raises(ValueError, match=r"^b.out: not a JSON list of class probabilities"):
        predicted_class(b'{"other": 1}', "b.out")


def test_each_test_image_has_its_answer_found_by_listing_or_the_gap_is_named() -> None:
    from pipeline.evaluation.transform import answer_keys

    out = "evaluation/d/r/out/"
    listed = [f"{out}a/1.png.out", f"{out}b/2.png.out", "evaluation/d/r/other/c/3.png.out", f"{out}_SUCCESS"]
    assert answer_keys(listed, out, ["a/1.png", "b/2.png"], "s3://art/" + out) == {
        "a/1.png": f"{out}a/1.png.out",
        "b/2.png": f"{out}b/2.png.out",
    }
    with pytest.raises(EvaluationIncomplete) as incomplete:
        answer_keys(listed, out, ["a/1.png", "c/3.png", "d/4.png"], "s3://art/" + out)
    assert str(incomplete.value) == (
        "2 of 3 test images have no answer under s3://art/evaluation/d/r/out/ (expected c/3.png.out); the "
        "transform wrote 3 object(s): _SUCCESS, a/1.png.out, b/2.png.out. Was the test index changed during the run?"
    )
    with pytest.raises(EvaluationIncomplete, match=r"wrote 0 object\(s\): nothing\."):
        answer_keys([], out, ["a/1.png"], "s3://art/" + out)


TRANSFORM_ARN = "arn:aws:sagemaker:us-east-1:123456789012:transform-job/digits-0123456789-test"


class Transforms(Fake):
    """DescribeTransformJob, StopTransformJob, ListTransformJobs and ListTags over one job."""

    def __init__(self, status: str, owner: str = "e1", fail: str | None = None) -> None:
        self.status, self.owner, self.fail = status, owner, fail
        self.stopped: list[str] = []

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        if self.fail:
            raise client_error(self.fail)
        return {"TransformJobStatus": self.status, "FailureReason": "ClientError: out of memory"}

    def delete_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
        self.deleted = [*getattr(self, "deleted", []), ModelName]
        return {}

    def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        self.stopped.append(TransformJobName)
        return {}

    def list_transform_jobs(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs == {"NameContains": RUN.run_id, "StatusEquals": "InProgress", "MaxResults": 100}
        name = f"{RUN.run_id}-test"
        return {
            "TransformJobSummaries": [
                {
                    "TransformJobName": name,
                    "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}",
                }
            ]
        }

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        return {"Tags": [{"Key": "tuning-pipeline:execution", "Value": self.owner}]}


EVALUATION = Evaluation(f"{RUN.run_id}-best", f"{RUN.run_id}-test", "s3://art/evaluation/digits/r/output/", 1000.0)


def test_the_test_labels_come_from_the_split_index_whichever_its_format() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.evaluation.transform import test_items

    manifest = TestSplit("s3://ds/datasets/d/test.manifest", "s3://ds/datasets/d/", 2)
    lines = [
        (1, '{"source-ref": "s3://ds/datasets/d/test/b/1.png", "class": 1}'),
        (2, ""),  # a blank line is no image
        (3, '{"source-ref": "s3://ds/datasets/d/test/a/2.png", "class": 0}'),
    ]
    assert test_items(lines, manifest, ("source-ref", "class")) == [("test/b/1.png", 1), ("test/a/2.png", 0)]
    with pytest.raises(DatasetError, match=r"^s3://ds/datasets/d/test.manifest, line 4: not valid JSON"):
        test_items([*lines, (4, "{")], manifest, ("source-ref", "class"))
    lst = TestSplit("s3://ds/datasets/d/test_lst/test.lst", "s3://ds/datasets/d/test/", 2)
    assert test_items([(1, "0\t1\tb/1.png"), (2, ""), (3, "1\t0\ta/2.png")], lst, ()) == [
        ("b/1.png", 1),
        ("a/2.png", 0),
    ]
    with pytest.raises(DatasetError, match=r"^s3://ds/datasets/d/test_lst/test.lst, line 2: "):
        test_items([(1, "0\t1\tb/1.png"), (2, "x")], lst, ())


def test_a_transform_that_stops_or_fails_on_its_own_reports_sagemakers_reason() -> None:
    class Ended(Transforms):
        def __init__(self, status: str, reason: str | None) -> None:
            super().__init__(status)
            self.reason = reason

        def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
            described = {"TransformJobStatus": self.status}
            return described if self.reason is None else {**described, "FailureReason": self.reason}

    name, limit = EVALUATION.transform_job_name, TESTED_RUN.settings.evaluation_max_seconds
    assert follow(TESTED_RUN, EVALUATION, Ended("Stopping", None), now=1001.0) == Tested(status="InProgress")
    # DescribeTransformJob's FailureReason is optional; a stop nobody here asked for keeps SageMaker's words.
    assert follow(TESTED_RUN, EVALUATION, Ended("Failed", None), now=1001.0) == Tested(
        status="Failed", failure_reason=f"{name}: Failed."
    )
    assert follow(TESTED_RUN, EVALUATION, Ended("Stopped", None), now=1001.0) == Tested(
        status="Failed", failure_reason=f"{name}: Stopped."
    )
    late = 1000.0 + limit + 1  # overdue, but it failed by itself: its own reason, not the limit's
    assert follow(TESTED_RUN, EVALUATION, Ended("Failed", "ClientError: bad record"), now=late) == Tested(
        status="Failed", failure_reason=f"{name}: Failed. ClientError: bad record"
    )


def test_a_transform_past_its_limit_is_stopped_and_the_run_fails_saying_which_limit() -> None:
    limit = TESTED_RUN.settings.evaluation_max_seconds
    running = Transforms("InProgress")
    assert follow(TESTED_RUN, EVALUATION, running, now=1000.0 + limit).status == "InProgress"
    assert running.stopped == []  # exactly at the limit: still allowed
    assert follow(TESTED_RUN, EVALUATION, running, now=1000.0 + limit + 1).status == "InProgress"
    assert running.stopped == [EVALUATION.transform_job_name]
    ended = follow(TESTED_RUN, EVALUATION, Transforms("Stopped"), now=1000.0 + limit + 61)
    assert ended is not None and ended.status == "Failed"
    assert ended.failure_reason.startswith(
        f"{EVALUATION.transform_job_name}: Stopped. stopped after evaluation_max_seconds (3,600 s"
    )
    failed = follow(TESTED_RUN, EVALUATION, Transforms("Failed"), now=1001.0)
    assert (
        failed is not None
        and failed.failure_reason == f"{EVALUATION.transform_job_name}: Failed. ClientError: out of memory"
    )
    assert follow(TESTED_RUN, EVALUATION, Transforms("Completed"), now=1001.0) is None  # time to score
    followed = Transforms("InProgress")  # another delivery's transform: followed, never stopped
    follow(TESTED_RUN, dataclasses.replace(EVALUATION, owned=False), followed, now=1000.0 + limit + 1)
    assert followed.stopped == []


def test_the_failure_path_and_the_cleanup_stop_a_running_test_transform() -> None:
    running = Transforms("InProgress")
    assert stop_evaluation(dataclasses.asdict(EVALUATION), running) == [EVALUATION.transform_job_name]
    assert running.deleted == [EVALUATION.model_name]
    theirs_running = Transforms("InProgress")
    assert stop_evaluation(dataclasses.asdict(dataclasses.replace(EVALUATION, owned=False)), theirs_running) == []
    assert theirs_running.stopped == [] and not hasattr(theirs_running, "deleted")
    assert stop_evaluation(None, running) == []  # failed before the evaluation started
    assert stop_evaluation(dataclasses.asdict(EVALUATION), Transforms("Completed")) == []
    assert stop_evaluation(dataclasses.asdict(EVALUATION), Transforms("x", fail="ResourceNotFound")) == []
    assert stop_evaluation(dataclasses.asdict(EVALUATION), Transforms("x", fail="ValidationException")) == []
    mine, theirs = Transforms("InProgress", owner="e1"), Transforms("InProgress", owner="e2")
    assert stop_run_evaluation(RUN.run_id, mine, "e1") == [f"{RUN.run_id}-test"]
    assert stop_run_evaluation(RUN.run_id, theirs, "e1") == [] and theirs.stopped == []


def test_the_worst_case_counts_the_transform_only_with_a_test_split() -> None:
    settings = RUN.settings  # 20 jobs x 3,600 s at $0.736/h; transform: ml.m5.xlarge at $0.23/h for 3,600 s
    assert worst_case(settings, "us-east-1").worst_case_usd == pytest.approx(20 * 0.736)
    with_test = worst_case(settings, "us-east-1", evaluation=True)
    assert with_test.worst_case_usd == pytest.approx(20 * 0.736 + 0.23)
    assert "test split's batch transform (ml.m5.xlarge)" in with_test.basis


@mock_aws
def test_scoring_finds_each_answer_by_listing_the_output_prefix() -> None:
    from handlers.check_evaluation import scored

    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("ds-b", "art"):  # "ds" is below S3's 3-character minimum
        s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket="ds-b", Key="datasets/digits/test_lst/test.lst", Body=b"0\t1\tb/1.png\n1\t0\ta/2.png\n2\t1\tb/3.png\n"
    )
    answers = {"b/1.png": [0.2, 0.8], "a/2.png": [0.9, 0.1], "b/3.png": [0.7, 0.3]}
    output = "evaluation/digits/r/output/"
    # Batch transform's answer: the input's key below the manifest prefix, + ".out".
    for key, value in answers.items():
        s3.put_object(Bucket="art", Key=f"{output}{key}.out", Body=json.dumps(value).encode())
    split = TestSplit("s3://ds-b/datasets/digits/test_lst/test.lst", "s3://ds-b/datasets/digits/test/", 3)
    two_classes = dataclasses.replace(TESTED_RUN, data=dataclasses.replace(TESTED_RUN.data, num_classes=2, test=split))
    evaluation = dataclasses.replace(EVALUATION, output_uri=f"s3://art/{output}")
    # Another run's answers in the same bucket, listed first without the prefix: never read.
    s3.put_object(Bucket="art", Key="a/2.png.out", Body=b"[0.1, 0.9]")
    tested = scored(two_classes, evaluation, s3, "art")
    assert (tested.status, tested.accuracy, tested.samples) == ("Completed", 2 / 3, 3)
    assert tested.evaluation_uri == f"s3://art/metrics/digits/{RUN.run_id}/evaluation.json"  # kept: metrics/
    document = json.loads(
        s3.get_object(Bucket="art", Key=tested.evaluation_uri.removeprefix("s3://art/"))["Body"].read()
    )
    assert document["confusion_matrix"] == [[1, 0], [1, 1]]
    assert (document["transform_job"], document["model"]) == (evaluation.transform_job_name, evaluation.model_name)
    head = s3.head_object(Bucket="art", Key=tested.evaluation_uri.removeprefix("s3://art/"))
    assert head["ContentType"] == "application/json"
    # An answer missing (or named otherwise): a clear error, counted, with what was found.
    s3.delete_object(Bucket="art", Key=f"{output}a/2.png.out")
    s3.put_object(Bucket="art", Key=f"{output}a/2.png.json", Body=b"[0.9, 0.1]")
    with pytest.raises(EvaluationIncomplete) as raised:
        scored(two_classes, evaluation, s3, "art")
    assert str(raised.value).startswith(
        f"1 of 3 test images have no answer under s3://art/{output} (expected a/2.png.out); "
        "the transform wrote 3 object(s): a/2.png.json, b/1.png.out, b/3.png.out."
    )


class Chunked(io.BytesIO):
    def iter_chunks(self, size: int) -> Any:
        while chunk := self.read(size):
            yield chunk


class Starter(Fake):
    """CreateModel, CreateTransformJob (optionally already there), DescribeTransformJob, ListTags."""

    def __init__(self, existing_owner: str | None = None) -> None:
        self.existing_owner = existing_owner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_model(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateModel", request))
        if self.existing_owner is not None:
            raise client_error("ValidationException")  # message below: "already existing model"
        return {"ModelArn": "arn:m"}

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("CreateTransformJob", request))
        if self.existing_owner is not None:
            raise client_error("ResourceInUse")
        return {"TransformJobArn": TRANSFORM_ARN}

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        from datetime import UTC, datetime

        return {"TransformJobArn": TRANSFORM_ARN, "CreationTime": datetime.fromtimestamp(500.0, UTC)}

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        return {"Tags": [{"Key": "tuning-pipeline:execution", "Value": self.existing_owner}]}


class Objects(Fake):
    SERVICE = "s3"

    def __init__(self) -> None:
        self.put: dict[str, bytes] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        assert (Bucket, Key) == ("ds", "datasets/digits/test_lst/test.lst")
        return {"Body": Chunked(b"0\t1\tb/1.png\n1\t0\ta/2.png\n")}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.put[f"s3://{Bucket}/{Key}"] = Body


def start(sm: Any, s3: Any, execution: str = "e1", **network: Any) -> Evaluation:
    from handlers.start_evaluation import start_evaluation

    return start_evaluation(
        TESTED_RUN,
        BEST,
        sm,
        s3,
        role_arn="arn:aws:iam::123456789012:role/sm",
        bucket="art",
        kms_key_arn=network.pop("kms_key_arn", None),
        execution=execution,
        **network,
    )


def test_the_model_and_the_transform_carry_the_deployments_key_and_network() -> None:
    sm = Starter()
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}
    start(sm, Objects(), kms_key_arn=kms, vpc_config=vpc)
    (_, model), (_, transform) = sm.calls
    assert model["VpcConfig"] == vpc and model["EnableNetworkIsolation"] is True
    assert transform["TransformOutput"]["KmsKeyId"] == kms


def test_starting_writes_the_input_manifest_then_the_model_and_the_transform_each_checked() -> None:
    sm, s3 = Starter(), Objects()
    evaluation = start(sm, s3)
    prefix = f"s3://art/evaluation/digits/{RUN.run_id}/"
    assert json.loads(s3.put[prefix + "input.manifest"]) == [{"prefix": SPLIT.prefix_uri}, "b/1.png", "a/2.png"]
    assert [name for name, _ in sm.calls] == ["CreateModel", "CreateTransformJob"]
    for operation, request in sm.calls:
        assert request_errors("sagemaker", operation, request) == []
    transform = sm.calls[1][1]
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == prefix + "input.manifest"
    assert evaluation.output_uri == prefix + "output/" and evaluation.owned
    # What CheckEvaluation and the cleanup follow: the names the requests created.
    model, transform_name = sm.calls[0][1]["ModelName"], transform["TransformJobName"]
    assert (evaluation.model_name, evaluation.transform_job_name) == (model, transform_name)
    assert transform_name == f"{RUN.run_id}-test" and transform["ModelName"] == model


def test_a_repeated_start_follows_the_existing_transform_and_owns_it_only_if_it_started_it() -> None:
    import botocore.exceptions

    def already(code: str) -> Any:
        error = client_error(code)
        error.response["Error"]["Message"] = 'Cannot create already existing model "arn:m".'
        return error

    class Again(Starter):
        def create_model(self, **request: Any) -> dict[str, Any]:
            raise already("ValidationException")

    mine = start(Again(existing_owner="e1"), Objects(), execution="e1")
    assert (mine.owned, mine.started_at) == (True, 500.0)  # the job's own creation time, not the retry's
    theirs = start(Again(existing_owner="e2"), Objects(), execution="e1")
    assert theirs.owned is False
    with pytest.raises(botocore.exceptions.ClientError):  # any other CreateModel error is raised
        start(Starter(existing_owner="e1"), Objects())


@pytest.mark.parametrize(
    ("code", "cleaned"),
    [("AccessDeniedException", True), ("ValidationException", True), ("ThrottlingException", False)],
)
def test_a_check_that_fails_leaves_nothing_running_unless_it_will_be_retried(code: str, cleaned: bool) -> None:
    from handlers.check_evaluation import check_evaluation

    sm = Transforms("InProgress", fail=code)
    with pytest.raises(Exception):  # noqa: B017 - which name it has is the workflow's business, below
        check_evaluation(TESTED_RUN, EVALUATION, sm, None, bucket="art", now=1001.0)
    assert sm.stopped == ([EVALUATION.transform_job_name] if cleaned else [])
    assert getattr(sm, "deleted", []) == ([EVALUATION.model_name] if cleaned else [])
    theirs = Transforms("InProgress", fail=code)
    with pytest.raises(Exception):  # noqa: B017
        check_evaluation(TESTED_RUN, dataclasses.replace(EVALUATION, owned=False), theirs, None, bucket="art", now=1.0)
    assert theirs.stopped == [] and not hasattr(theirs, "deleted")  # another delivery's: never touched


def test_a_transform_that_cannot_be_created_leaves_no_model_behind() -> None:
    class NoQuota(Starter):
        def create_transform_job(self, **request: Any) -> dict[str, Any]:
            self.calls.append(("CreateTransformJob", request))
            raise client_error("ResourceLimitExceeded")

        def delete_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
            self.calls.append(("DeleteModel", {"ModelName": ModelName}))
            return {}

    from pipeline.aws.errors import QuotaExceeded

    sm = NoQuota()
    with pytest.raises(QuotaExceeded, match="'ml.m5.xlarge for transform job usage'"):
        start(sm, Objects())
    assert [name for name, _ in sm.calls] == ["CreateModel", "CreateTransformJob", "DeleteModel"]
    assert sm.calls[2][1] == {"ModelName": sm.calls[0][1]["ModelName"]}


def test_the_cleanup_deletes_the_evaluation_model_only_of_the_execution_that_ended() -> None:
    from handlers.stop_orphans import delete_run_model
    from pipeline.evaluation.transform import model_name

    class Models(Transforms):
        def __init__(self, owner: str, exists: bool = True) -> None:
            super().__init__("Completed", owner)
            self.exists = exists

        def describe_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
            if not self.exists:
                error = client_error("ValidationException")
                error.response["Error"]["Message"] = f'Could not find model "{ModelName}".'
                raise error
            return {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{ModelName}"}

    mine, theirs, gone = Models("e1"), Models("e2"), Models("e1", exists=False)
    assert delete_run_model(RUN.run_id, mine, "e1") == [model_name(RUN.run_id)]
    assert mine.deleted == [model_name(RUN.run_id)]
    assert delete_run_model(RUN.run_id, theirs, "e1") == [] and not hasattr(theirs, "deleted")
    assert delete_run_model(RUN.run_id, gone, "e1") == []


def s3_with_test_split(lst: bytes) -> tuple[Any, Any, Evaluation]:
    """Inside mock_aws: the dataset and artifacts buckets, a two-class run whose test index is `lst`,
    and its evaluation writing answers under s3://art/evaluation/digits/r/output/."""
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("ds-b", "art"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="ds-b", Key="datasets/digits/test_lst/test.lst", Body=lst)
    split = TestSplit(
        "s3://ds-b/datasets/digits/test_lst/test.lst", "s3://ds-b/datasets/digits/test/", lst.count(b"\n")
    )
    run = dataclasses.replace(TESTED_RUN, data=dataclasses.replace(TESTED_RUN.data, num_classes=2, test=split))
    return s3, run, dataclasses.replace(EVALUATION, output_uri="s3://art/evaluation/digits/r/output/")


@mock_aws
def test_a_completed_check_scores_the_answers_and_deletes_the_model_a_running_one_waits() -> None:
    from handlers.check_evaluation import check_evaluation

    s3, run, evaluation = s3_with_test_split(b"0\t1\tb/1.png\n1\t0\ta/2.png\n")
    for key, answer in (("b/1.png", [0.1, 0.9]), ("a/2.png", [0.2, 0.8])):  # the second is wrong
        s3.put_object(Bucket="art", Key=f"evaluation/digits/r/output/{key}.out", Body=json.dumps(answer).encode())
    running = Transforms("InProgress")
    assert check_evaluation(run, evaluation, running, s3, bucket="art", now=1001.0) == Tested(status="InProgress")
    assert not hasattr(running, "deleted")  # the transform still needs its model
    done = Transforms("Completed")
    tested = check_evaluation(run, evaluation, done, s3, bucket="art", now=1001.0)
    assert (tested.status, tested.accuracy, tested.samples) == ("Completed", 0.5, 2)
    assert done.deleted == [EVALUATION.model_name]
    failed = Transforms("Failed")
    assert check_evaluation(run, evaluation, failed, s3, bucket="art", now=1001.0).status == "Failed"
    assert failed.deleted == [EVALUATION.model_name]


@mock_aws
def test_a_completed_transform_without_answers_or_with_a_bad_one_is_named() -> None:
    from handlers.check_evaluation import check_evaluation

    s3, run, evaluation = s3_with_test_split(b"0\t1\tb/1.png\n")
    # The output prefix is empty (S3 lists no Contents at all): a clear gap, not a crash.
    with pytest.raises(EvaluationIncomplete, match=r"1 of 1 test images have no answer .* wrote 0 object\(s\)"):
        check_evaluation(run, evaluation, Transforms("Completed"), s3, bucket="art", now=1001.0)
    s3.put_object(Bucket="art", Key="evaluation/digits/r/output/b/1.png.out", Body=b"not json")
    with pytest.raises(ValueError, match=r"^s3://art/evaluation/digits/r/output/b/1.png.out: not a JSON list"):
        check_evaluation(run, evaluation, Transforms("Completed"), s3, bucket="art", now=1001.0)


def test_deleting_a_model_already_deleted_is_not_an_error_anything_else_is() -> None:
    from handlers.start_evaluation import delete_model

    class Gone(Fake):
        def __init__(self, message: str) -> None:
            self.message = message

        def delete_model(self, ModelName: str) -> None:  # noqa: N803
            error = client_error("ValidationException")
            error.response["Error"]["Message"] = self.message
            raise error

    delete_model(Gone('Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/m".'), "m")
    with pytest.raises(botocore.exceptions.ClientError):
        delete_model(Gone("User is not authorized to perform: sagemaker:DeleteModel"), "m")


def test_a_failed_check_reports_its_own_error_even_when_the_cleanup_is_refused_too() -> None:
    from handlers.check_evaluation import check_evaluation

    class Refusing(Transforms):
        def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
            raise client_error("ValidationException")  # e.g. it completed meanwhile: nothing to stop

        def delete_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
            self.deleted = [*getattr(self, "deleted", []), ModelName]
            raise client_error("ResourceInUse")  # refused too; the check's own error is the one reported

    sm = Refusing("InProgress", fail="AccessDeniedException")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        check_evaluation(TESTED_RUN, EVALUATION, sm, None, bucket="art", now=1001.0)
    assert raised.value.operation_name == "Op" and raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert sm.deleted == [EVALUATION.model_name]  # tried, after the stop was refused
