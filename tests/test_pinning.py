"""Train and evaluate on what was validated: an index replaced or deleted after validation does not
reach the jobs. The uploads are versioned, as the deployed datasets bucket is."""

from __future__ import annotations

import dataclasses
import re

import boto3
import pytest
from moto import mock_aws

from handlers.start_evaluation import read_test_items
from pipeline.aws.errors import DatasetError
from pipeline.dataset.pinning import pinned_channels
from pipeline.dataset.validation import validate_dataset
from pipeline.settings.tuning_settings import TuningSettings
from tests.test_bad_input import BUCKET, PREFIX, REGION, good_files, upload
from tests.test_held_out import with_test

ARTIFACTS = "ic-tuning-dev-artifacts-123456789012-us-east-1"
URI = f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def read(s3, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_the_jobs_read_the_indexes_as_validated_though_replaced_since(s3) -> None:
    files = with_test(good_files())
    run = validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    assert set(run.data.pinned) == {f"{URI}{s}_lst/{s}.lst" for s in ("train", "validation", "test")}
    for split in ("train", "validation", "test"):  # the uploader replaces every index afterwards
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{split}_lst/{split}.lst", Body=b"0\t0\tc0/0.png\n")
    data = pinned_channels(run.data, run.dataset, run.run_id, s3, ARTIFACTS)
    digest = re.fullmatch(
        rf"s3://{ARTIFACTS}/inputs/flowers/{run.run_id}/([0-9a-f]{{12}})/train_lst/", data.channel_uris()["train_lst"]
    )
    assert digest is not None
    inputs = f"s3://{ARTIFACTS}/inputs/flowers/{run.run_id}/{digest.group(1)}/"
    assert data.channel_uris() == {
        "train": f"{URI}train/",  # images are read where they are
        "validation": f"{URI}validation/",
        "train_lst": f"{inputs}train_lst/",
        "validation_lst": f"{inputs}validation_lst/",
    }
    for split in ("train", "validation"):
        assert read(s3, f"{inputs}{split}_lst/{split}.lst") == files[f"{split}_lst/{split}.lst"]
    # The evaluation reads the test index at its validated version: all six images, not the one line.
    assert [key for key, _ in read_test_items(s3, run)] == [f"c{i % 3}/{i}.png" for i in range(6)]


def test_an_index_version_deleted_before_the_start_is_named_and_nothing_is_trained(s3) -> None:
    run = validate_dataset(upload(s3, good_files()), TuningSettings().to_dict(), s3)
    uri = f"{URI}train_lst/train.lst"
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}train_lst/train.lst", VersionId=run.data.pinned[uri])
    with pytest.raises(DatasetError, match=f"^{uri}: the version validated .* was deleted before the tuning started"):
        pinned_channels(run.data, run.dataset, run.run_id, s3, ARTIFACTS)


def test_a_second_read_during_validation_reads_the_version_of_the_first(s3) -> None:
    # A duplicated index is named by reading the .lst again, for the earlier line. Replaced in
    # between, a second read at the newest version would name a line of another file.
    files = good_files()
    lines = files["train_lst/train.lst"].decode().splitlines()
    lines[4] = "1\t1\tc1/4.png"  # line 5 reuses the index of line 2
    files["train_lst/train.lst"] = ("\n".join(lines) + "\n").encode()
    event = upload(s3, files)
    original = s3.get_object

    def replaced_after_first_read(**kwargs):
        response = original(**kwargs)
        if kwargs["Key"].endswith("train.lst") and "VersionId" not in kwargs:
            s3.put_object(Bucket=BUCKET, Key=kwargs["Key"], Body=b"1\t0\tc0/0.png\n")  # index 1 on line 1
        return response

    s3.get_object = replaced_after_first_read
    with pytest.raises(DatasetError, match=r"train.lst, line 5: index 1 already used on line 2\."):
        validate_dataset(event, TuningSettings().to_dict(), s3)


def test_a_retry_finds_its_copies_and_another_delivery_copies_beside_them(s3) -> None:
    run = validate_dataset(upload(s3, good_files()), TuningSettings().to_dict(), s3)
    first = pinned_channels(run.data, run.dataset, run.run_id, s3, ARTIFACTS)
    uri = f"{URI}train_lst/train.lst"
    # A retry of StartTuning after the jobs started, the validated version deleted since: no failure.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}train_lst/train.lst", VersionId=run.data.pinned[uri])
    assert pinned_channels(run.data, run.dataset, run.run_id, s3, ARTIFACTS) == first
    # Another delivery of the same upload, validated against a newer train.lst: its own copy.
    newer = s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}train_lst/train.lst", Body=b"0\t0\tc0/0.png\n")
    other = dataclasses.replace(run.data, pinned={**run.data.pinned, uri: newer["VersionId"]})
    second = pinned_channels(other, run.dataset, run.run_id, s3, ARTIFACTS)
    assert second.channel_uris()["train_lst"] != first.channel_uris()["train_lst"]
    assert read(s3, first.channel_uris()["train_lst"] + "train.lst") == good_files()["train_lst/train.lst"]
    assert read(s3, second.channel_uris()["train_lst"] + "train.lst") == b"0\t0\tc0/0.png\n"


def test_the_tuning_request_sent_reads_the_pinned_copies_and_carries_key_network_and_checkpoints(s3) -> None:
    from handlers.start_tuning import start_tuning
    from tests.fakes import Fake

    class Created(Fake):
        def __init__(self) -> None:
            self.requests: list[dict] = []

        def create_hyper_parameter_tuning_job(self, **request: object) -> dict:
            self.requests.append(request)
            return {
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/x"
            }

    settings = {**TuningSettings().to_dict(), "use_spot": True, "max_wait_seconds": 72_000}
    run = validate_dataset(upload(s3, good_files()), settings, s3)
    sm = Created()
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}
    tuning = start_tuning(
        run, sm, s3, role_arn="arn:aws:iam::123456789012:role/sm", bucket=ARTIFACTS, kms_key_arn=kms,
        region=REGION, execution="arn:aws:states:us-east-1:123456789012:execution:m:e", vpc_config=vpc,
    )  # fmt: skip
    ((request,),) = [sm.requests]
    assert tuning.started == (request["HyperParameterTuningJobName"],)
    definitions = request.get("TrainingJobDefinitions") or [request["TrainingJobDefinition"]]
    inputs = f"s3://{ARTIFACTS}/inputs/flowers/{run.run_id}/"
    for definition in definitions:
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in definition["InputDataConfig"]}
        assert channels["train"] == f"{URI}train/" and channels["train_lst"].startswith(inputs)  # the copy
        assert channels["validation_lst"].startswith(inputs)
        assert definition["OutputDataConfig"]["KmsKeyId"] == kms
        assert definition["VpcConfig"] == vpc
        checkpoint = f"s3://{ARTIFACTS}/checkpoints/flowers/{run.run_id}/"
        assert definition["CheckpointConfig"]["S3Uri"].startswith(checkpoint)
        assert definition["OutputDataConfig"]["S3OutputPath"] == f"s3://{ARTIFACTS}/tuning/flowers/{run.run_id}/"
