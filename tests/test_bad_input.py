"""Bad input is rejected by validation — before any tuning job — with the file, the line or key,
and the fix; the uploaded data is left exactly as it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.api_model import request_errors
from pipeline.aws.errors import DatasetError
from pipeline.dataset import leakage
from pipeline.dataset.leakage import Images, Leakage
from pipeline.dataset.listing import Listed
from pipeline.dataset.validation import validate_dataset
from pipeline.evaluation.transform import transform_request
from pipeline.settings.tuning_settings import TuningSettings
from tests.conftest import fixture_json

REGION = "us-east-1"
BUCKET = "ic-tuning-dev-datasets-123456789012-us-east-1"
PREFIX = "datasets/flowers/"
MANIFEST = {"format": "image"}


def good_files(n_train: int = 24, n_val: int = 6, classes: int = 3) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for split, n in (("train", n_train), ("validation", n_val)):
        lines = []
        for i in range(n):
            files[f"{split}/c{i % classes}/{i}.png"] = f"png {split} {i}".encode()  # no two alike
            lines.append(f"{i}\t{i % classes}\tc{i % classes}/{i}.png")
        files[f"{split}_lst/{split}.lst"] = ("\n".join(lines) + "\n").encode()
    files["manifest.json"] = json.dumps(MANIFEST, indent=2).encode()
    return files


def lst_lines(files: dict[str, bytes], split: str = "train") -> list[str]:
    return files[f"{split}_lst/{split}.lst"].decode().splitlines()


def set_lst(files: dict[str, bytes], lines: list[str], split: str = "train") -> None:
    files[f"{split}_lst/{split}.lst"] = ("\n".join(lines) + "\n").encode()


def manifest(**fields: Any) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files["manifest.json"] = json.dumps({**MANIFEST, **fields}, indent=2).encode()

    return change


def tuning(**overrides: Any) -> Callable[[dict[str, bytes]], None]:
    return manifest(tuning=overrides)


def edit_line(index: int, new: Callable[[str], str], split: str = "train") -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        lines = lst_lines(files, split)
        lines[index] = new(lines[index])
        set_lst(files, lines, split)

    return change


def raw(name: str, body: bytes) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files[name] = body

    return change


def drop(prefix: str) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        for key in [k for k in files if k.startswith(prefix)]:
            del files[key]

    return change


def empty_objects(prefix: str) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        for key in [k for k in files if k.startswith(prefix)]:
            files[key] = b""

    return change


def single_class(files: dict[str, bytes]) -> None:
    for split in ("train", "validation"):
        set_lst(files, [f"{i}\t0\t{line.split(chr(9))[2]}" for i, line in enumerate(lst_lines(files, split))], split)


def gap_in_labels(files: dict[str, bytes]) -> None:
    set_lst(files, [line.replace("\t2\t", "\t3\t") for line in lst_lines(files)])


CASES: list[tuple[str, Callable[[dict[str, bytes]], None], list[str]]] = [
    (
        "manifest not JSON",
        raw("manifest.json", b'{"format": "image",\n  oops}'),
        ["manifest.json, line 2: not valid JSON", "minimal manifest"],
    ),
    (
        "manifest not an object",
        raw("manifest.json", b'["image"]'),
        ["manifest.json, line 1: the manifest must be a JSON object"],
    ),
    ("manifest unknown key", manifest(colour="blue"), ["manifest.json, line 3: unknown key 'colour'", "Allowed keys"]),
    ("manifest bad format", manifest(format="tfrecord"), ["line 2: key 'format' must be one of image, recordio"]),
    ("manifest wrong type", tuning(epochs="30"), ["key 'epochs' must be an integer", "(line"]),
    (
        "range min > max",
        tuning(ranges={"learning_rate": {"min": 0.5, "max": 0.01}}),
        ["key 'ranges.learning_rate': min (0.5) must be less than max (0.01)"],
    ),
    (
        "log scaling from 0",
        tuning(ranges={"weight_decay": {"min": 0.0, "scaling": "Logarithmic"}}),
        ["ranges.weight_decay': Logarithmic scaling needs min > 0"],
    ),
    (
        "parallel > max jobs",
        tuning(max_training_jobs=4, max_parallel_jobs=8),
        ["'max_parallel_jobs' (8) is greater than 'max_training_jobs' (4)"],
    ),
    (
        "CPU instance",
        tuning(instance_type="ml.c5.xlarge"),
        ["key 'instance_type' must be a GPU training instance type"],
    ),
    (
        "runtime below the API minimum",
        tuning(max_runtime_seconds=60),
        ["key 'max_runtime_seconds' must be between 120 and 2419200"],
    ),
    ("unknown tuning key", tuning(learning_rate=0.1), ["unknown key(s) learning_rate"]),
    (
        "recordio without counts",
        manifest(format="recordio"),
        ["RecordIO datasets must state 'num_classes' and 'num_training_samples'"],
    ),
    ("num_classes contradicts .lst", manifest(num_classes=5), ["'num_classes' is 5 but train.lst has 3 classes"]),
    (
        "num_training_samples contradicts .lst",
        manifest(num_training_samples=1000),
        ["'num_training_samples' is 1000 but train.lst lists", "Remove the key"],
    ),
    (
        "an image format the algorithm does not read",
        edit_line(1, lambda s: s.replace(".png", ".gif")),
        ["train.lst, line 2:", "is not a .jpg, .jpeg or .png image", "Convert the image, or remove the line"],
    ),
    (
        "missing channel",
        drop("validation/"),
        ["validation/: channel 'validation' is missing or empty", "before the manifest"],
    ),
    (
        "empty images",
        empty_objects("train/"),
        ["train.lst, line 1:", "train/c0/0.png is empty (0 bytes)", "Upload the image again, or remove the line"],
    ),
    ("empty channel", drop("train/"), ["train/: channel 'train' is missing or empty"]),
    ("missing .lst channel", drop("train_lst/"), ["train_lst/: channel 'train_lst' is missing or empty"]),
    (
        "two .lst files",
        raw("train_lst/extra.lst", b"0\t0\tc0/0.png\n"),
        ["train_lst/: expected exactly one .lst file, found 2"],
    ),
    (
        "wrong column count",
        edit_line(2, lambda s: s.replace("\t", " ", 1)),
        ["train.lst, line 3: expected 3 tab-separated columns", "one TAB"],
    ),
    (
        "non-integer label",
        edit_line(4, lambda s: s.replace("\t1\t", "\tone\t")),
        ["train.lst, line 5: label 'one' is not a class number"],
    ),
    ("non-contiguous labels", gap_in_labels, ["labels must be contiguous from 0; missing [2]", "Renumber"]),
    (
        "duplicate index",
        edit_line(5, lambda s: "0" + s[s.index("\t") :]),
        ["train.lst, line 6: index 0 already used on line 1"],
    ),
    (
        "path does not exist",
        edit_line(1, lambda s: s.replace(".png", "-missing.png")),
        ["train.lst, line 2:", "does not exist. Upload the image or remove the line"],
    ),
    (
        "path escapes the prefix",
        edit_line(1, lambda s: s.rsplit("\t", 1)[0] + "\t../../secret.png"),
        ["train.lst, line 2: path '../../secret.png' must be relative", "no '..'"],
    ),
    (
        "absolute path",
        edit_line(1, lambda s: s.rsplit("\t", 1)[0] + "\t/c1/1.png"),
        ["train.lst, line 2: path '/c1/1.png'"],
    ),
    (
        "byte-order mark",
        lambda f: f.__setitem__("train_lst/train.lst", "\ufeff".encode() + f["train_lst/train.lst"]),
        ["train.lst, line 1: starts with a UTF-8 byte-order mark"],
    ),
    (
        "CRLF line endings",
        lambda f: f.__setitem__("train_lst/train.lst", f["train_lst/train.lst"].replace(b"\n", b"\r\n")),
        ["train.lst, line 1: Windows (CRLF) line ending", "dos2unix"],
    ),
    ("blank .lst", raw("train_lst/train.lst", b"\n\n"), ["train.lst: the file is empty (no line names an image)"]),
    ("0-byte .lst", raw("train_lst/train.lst", b""), ["train_lst/train.lst: the file is empty"]),
    ("not UTF-8", raw("train_lst/train.lst", b"0\t0\tc0/\xff.png\n"), ["train.lst, line 1: not UTF-8 text (byte 7)"]),
    (
        "fewer images than the smallest batch",
        lambda f: f.update(good_files(n_train=6)),
        ["6 training images, fewer than the smallest mini_batch_size (8)", "lower tuning.ranges.mini_batch_size.min"],
    ),
    ("single class", single_class, ["train.lst: only one class (0)", "at least two classes"]),
    (
        "validation class unseen in training",
        edit_line(0, lambda s: s.replace("\t0\t", "\t3\t"), split="validation"),
        ["validation has labels up to 3 but training only 2"],
    ),
]


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def upload(s3: Any, files: dict[str, bytes], prefix: str = PREFIX) -> dict[str, Any]:
    for name, body in files.items():
        if name != "manifest.json":
            s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=body)
    put = s3.put_object(Bucket=BUCKET, Key=prefix + "manifest.json", Body=files["manifest.json"])
    event = copy.deepcopy(fixture_json("manifest_created_event.json"))
    event["detail"]["object"]["key"] = prefix + "manifest.json"
    event["detail"]["object"]["version-id"] = put["VersionId"]
    return event


def snapshot(s3: Any) -> dict[str, bytes]:
    listed = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    return {
        f"{v['Key']}@{v['VersionId']}": s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])[
            "Body"
        ].read()
        for v in listed
    }


def test_the_good_dataset_is_valid(s3) -> None:
    run = validate_dataset(upload(s3, good_files()), TuningSettings().to_dict(), s3)
    assert run.data.num_classes == 3


@pytest.mark.parametrize(("case", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_with_file_line_and_fix(s3, case: str, change, expected: list[str]) -> None:
    files = good_files()
    change(files)
    event = upload(s3, files)
    before = snapshot(s3)
    with pytest.raises(DatasetError) as error:
        validate_dataset(event, TuningSettings().to_dict(), s3)
    message = str(error.value)
    assert f"s3://{BUCKET}/{PREFIX}" in message, message
    for fragment in expected:
        assert fragment in message, f"{case}: {message}"
    assert snapshot(s3) == before  # validation only reads


def test_there_are_at_least_25_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) >= 25


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("other/manifest.json", "not a dataset manifest. The pipeline starts only for 'datasets/<name>/manifest.json'"),
        ("datasets/a/b/manifest.json", "not a dataset manifest"),
        ("datasets/flowers/train/c0/0.png", "not a dataset manifest"),
        ("datasets/bad name!/manifest.json", "dataset name 'bad name!' must be 1-64 letters"),
    ],
)
def test_keys_that_are_not_manifests_are_rejected(s3, key: str, expected: str) -> None:
    event = fixture_json("manifest_created_event.json")
    event["detail"]["object"]["key"] = key
    with pytest.raises(DatasetError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_dataset(event, TuningSettings().to_dict(), s3)


def test_a_manifest_deleted_before_the_run_reads_it(s3) -> None:
    event = upload(s3, good_files())
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "manifest.json", VersionId=event["detail"]["object"]["version-id"])
    with pytest.raises(
        DatasetError, match=r"manifest.json: cannot be read \(NoSuchVersion\); it was deleted or replaced"
    ):
        validate_dataset(event, TuningSettings().to_dict(), s3)


def test_an_event_that_is_not_an_s3_event(s3) -> None:
    with pytest.raises(DatasetError, match="not an S3 'Object Created' event"):
        validate_dataset({"detail": {}}, TuningSettings().to_dict(), s3)


def test_a_dataset_too_large_to_pass_in_state_yields_a_small_descriptor(s3) -> None:
    # 1,500 training images with long names: the .lst alone is over the 256 KiB state limit if passed on.
    files = good_files(n_train=0, n_val=40, classes=10)
    name = "an-image-file-name-as-long-as-a-camera-or-an-export-tool-writes-it-" * 3
    lines = [f"{i}\t{i % 10}\tclass-{i % 10}/{name}{i:06d}.png" for i in range(1500)]
    set_lst(files, lines)
    assert len(files["train_lst/train.lst"]) > 256 * 1024
    for line in lines:
        files["train/" + line.split("\t")[2]] = b"png"
    run = validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    assert run.data.num_training_samples == 1500
    assert len(json.dumps(run.to_dict()).encode()) < 8 * 1024


# CreateTransformJob (botocore's model of the API): MaxPayloadInMB "must be greater than, or equal
# to, the size of a single record"; "The default value is 6 MB"; "cannot be greater than 100 MB";
# "(MaxConcurrentTransforms * MaxPayloadInMB) also cannot exceed 100 MB". The API leaves a MB
# undefined: 10^6 bytes is the reading that is right either way.
MB = 1_000_000


def with_test_split(files: dict[str, bytes], sizes: list[int]) -> dict[str, bytes]:
    lines = []
    for i, size in enumerate(sizes):
        files[f"test/c{i % 3}/{i}.png"] = (f"test {i} ".encode() + b"p" * size)[:size]
        lines.append(f"{i}\t{i % 3}\tc{i % 3}/{i}.png")
    files["test_lst/test.lst"] = ("\n".join(lines) + "\n").encode()
    return files


@pytest.mark.parametrize(
    ("largest", "payload"),  # bytes of the largest test image -> MaxPayloadInMB, MaxConcurrentTransforms
    [(3, (6, None)), (6 * MB, (6, None)), (6 * MB + 1, (7, 14)), (6 * 1024 * 1024, (7, 14)), (34 * MB, (34, 2))],
)
def test_the_test_transform_takes_the_largest_test_image(s3, largest: int, payload: tuple[int, int | None]) -> None:
    files = with_test_split(good_files(), [1, largest, 2])
    run = validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    assert run.data.test is not None and run.data.test.largest_image_bytes == largest
    request = transform_request(run, manifest_uri="s3://a/m", output_uri="s3://a/o/", kms_key_arn=None, tags=[])
    assert (request["MaxPayloadInMB"], request.get("MaxConcurrentTransforms")) == payload
    assert request_errors("sagemaker", "CreateTransformJob", request) == []


def test_a_test_image_over_100_mb_is_refused_naming_it_before_anything_starts(s3, monkeypatch) -> None:
    # 100 MB objects in moto are slow: the limit is lowered instead, the path is the real one.
    monkeypatch.setattr(leakage, "MAX_PAYLOAD_MB", 0.000002)  # 2 bytes
    files = with_test_split(good_files(), [1, 3, 2])
    with pytest.raises(DatasetError) as refused:
        validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    message = str(refused.value)
    assert message.startswith(f"s3://{BUCKET}/{PREFIX}test_lst/test.lst: names s3://{BUCKET}/{PREFIX}test/c1/1.png")
    assert "Downscale it, or leave it out of the test split" in message


def test_the_largest_is_the_largest_listed_image_the_index_names() -> None:
    listed = {
        "c0/small.png": Listed(5, "a"),
        "c1/huge.tif": Listed(100 * MB + 1, "b"),
        "c2/unlisted.png": Listed(200 * MB, "c"),
    }
    images = Images(listed, "test", "s3://ds/d/test_lst/test.lst", "s3://ds/d/test/", Leakage())
    assert images.exists("c0/small.png") and images.exists("c1/huge.tif") and not images.exists("c2/gone.png")
    images.named(1, "c0/small.png")
    images.named(2, "c1/huge.tif")
    with pytest.raises(DatasetError, match=r"c1/huge.tif, 100.0 MB; a batch transform takes records of at most 100 MB"):
        images.check_payload()
    exact = Images(
        {"c0/a.png": Listed(100 * MB, "a")}, "test", "s3://ds/d/test_lst/test.lst", "s3://ds/d/test/", Leakage()
    )
    exact.named(1, "c0/a.png")
    assert exact.check_payload() == 100 * MB
