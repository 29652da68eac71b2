"""The third input format: augmented manifests (JSON Lines with source-ref and a class attribute),
validated as thoroughly as `.lst` files and sent to SageMaker as the algorithm's page documents.

Expected values come from the "Image classification algorithm" page (DOMAIN.md section 3 and 8):
S3DataType AugmentedManifestFile, AttributeNames image first and label second, RecordWrapperType
RecordIO, Pipe input mode, content type application/x-recordio.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.api_model import request_errors
from pipeline.aws.errors import DatasetError
from pipeline.dataset import leakage
from pipeline.dataset.augmented import scan_augmented
from pipeline.dataset.lst import text_lines
from pipeline.dataset.manifest import parse_manifest
from pipeline.dataset.validation import validate_dataset
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.request import build_tuning_requests
from tests.sample_request import DEST
from tools.dataset import prepare, upload
from tools.plan import plan

URI = "s3://ds/datasets/cats/"
WHERE = URI + "train.manifest"


def scan(*lines: str, exists: Any = None, attribute: str = "class") -> Any:
    text = "\n".join(lines)
    return scan_augmented(text_lines(text, WHERE), WHERE, label_attribute=attribute, dataset_uri=URI, exists=exists)


def line(ref: str = "img/a.jpg", **extra: Any) -> str:
    return json.dumps({"source-ref": URI + ref if "://" not in ref else ref, "class": 0, **extra})


def test_a_ground_truth_style_manifest_is_counted() -> None:
    lines = [
        json.dumps({"source-ref": f"{URI}img/{i}.jpg", "animal": i % 3, "animal-metadata": {"class-name": "x"}})
        for i in range(7)
    ]
    summary = scan(*lines, "", attribute="animal", exists=lambda key: key.startswith("img/"))
    assert (summary.images, summary.classes) == (7, 3)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 2: not valid JSON (Expecting property name enclosed in double quotes). One JSON object"),
        ("[1, 2]", "line 2: not a JSON object. One object per line, with 'source-ref'."),
        (json.dumps({"class": 1}), "line 2: no 'source-ref'. Each line names its image's S3 URI there."),
        (
            line("s3://other/datasets/cats/a.jpg", **{"class": 1}),
            "line 2: source-ref 's3://other/datasets/cats/a.jpg' is outside the dataset (s3://ds/datasets/cats/)",
        ),
        (line("img/../../dogs/a.jpg"), "is outside the dataset"),
        (line(URI.replace("cats", "cats2") + "a.jpg"), "is outside the dataset"),
        (line("img/a.gif"), "line 2: 's3://ds/datasets/cats/img/a.gif' is not a .jpg, .jpeg or .png image"),
        (
            json.dumps({"source-ref": URI + "b.png"}),
            "line 2: no 'class' attribute. Add the class number, or set the manifest's 'label_attribute'",
        ),
        (json.dumps({"source-ref": URI + "b.png", "class": "1"}), "line 2: 'class' is '1', not a class number."),
        (json.dumps({"source-ref": URI + "b.png", "class": 1.5}), "line 2: 'class' is 1.5, not a class number."),
        (json.dumps({"source-ref": URI + "b.png", "class": True}), "line 2: 'class' is True, not a class number."),
        (json.dumps({"source-ref": URI + "b.png", "class": -1}), "line 2: 'class' is -1, not a class number."),
    ],
)
def test_each_bad_line_is_named_with_its_fix(bad: str, message: str) -> None:
    with pytest.raises(DatasetError) as raised:
        scan(line(), bad, line("c.png", **{"class": 1}))
    assert str(raised.value).startswith(WHERE + ", line 2: ")  # the file and the line
    assert message in str(raised.value)


def test_missing_images_empty_files_and_gaps_in_the_labels_are_refused() -> None:
    with pytest.raises(DatasetError, match=r"train.manifest, line 1: s3://ds/datasets/cats/img/a.jpg does not exist"):
        scan(line(), exists=lambda key: False)
    with pytest.raises(DatasetError, match=r"train.manifest: the file is empty"):
        scan("", "")
    with pytest.raises(DatasetError, match=r"labels must be contiguous from 0; missing \[1\]"):
        scan(line(), line("b.png", **{"class": 2}))


def test_the_manifest_names_its_label_attribute_for_augmented_manifests_only() -> None:
    base = TuningSettings()
    manifest, _ = parse_manifest('{"format": "augmented_manifest", "label_attribute": "animal"}', "m.json", base)
    assert (manifest.format, manifest.label_attribute) == ("augmented_manifest", "animal")
    with pytest.raises(DatasetError, match=r"line 1: 'label_attribute' only applies to format 'augmented_manifest'"):
        parse_manifest('{"format": "image", "label_attribute": "animal"}', "m.json", base)
    with pytest.raises(DatasetError, match=r"not 'source-ref'\), got 'source-ref'"):
        parse_manifest('{"format": "augmented_manifest", "label_attribute": "source-ref"}', "m.json", base)


BUCKET = "ic-tuning-dev-datasets-123456789012-us-east-1"


@contextmanager
def uploaded(folder: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A prepared dataset uploaded as `digits` to a versioned moto bucket, and its manifest's event."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        put = upload(folder, s3, BUCKET, "digits", progress=False)
        event = {"detail": {"bucket": {"name": BUCKET}, "object": {"key": "datasets/digits/manifest.json"}}}
        event["detail"]["object"]["version-id"] = put["VersionId"]
        yield s3, event


@pytest.fixture(scope="module")
def prepared(sample_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("augmented") / "digits"
    prepare(sample_images, out, format="augmented_manifest", tuning={"max_training_jobs": 4}, progress=False)
    return out


def test_validation_counts_an_uploaded_augmented_dataset_and_the_request_streams_it(prepared: Path) -> None:
    bucket = BUCKET
    with uploaded(prepared) as (s3, event):
        first = json.loads(s3.get_object(Bucket=bucket, Key="datasets/digits/train.manifest")["Body"].readline())
        run = validate_dataset(event, TuningSettings().to_dict(), s3)
    assert first["source-ref"].startswith(f"s3://{bucket}/datasets/digits/train/digit_")
    assert (run.data.num_classes, run.data.num_training_samples, run.data.num_validation_samples) == (10, 1438, 359)
    (request,) = build_tuning_requests(run.run_id, run.settings, run.data, DEST)
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []
    definition = request["TrainingJobDefinitions"][0]
    assert definition["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    for channel, name in zip(definition["InputDataConfig"], ("train", "validation"), strict=True):
        assert channel == {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "AugmentedManifestFile",
                    "S3Uri": f"s3://{bucket}/datasets/digits/{name}.manifest",
                    "S3DataDistributionType": "FullyReplicated",
                    "AttributeNames": ["source-ref", "class"],
                }
            },
            "RecordWrapperType": "RecordIO",
            "InputMode": "Pipe",
            "ContentType": "application/x-recordio",
            "CompressionType": "None",
        }
    assert definition["StaticHyperParameters"]["resize"] == "256"  # raw images: cropped like image files


def test_the_plan_reads_a_prepared_augmented_dataset_as_the_upload_would_place_it(prepared: Path) -> None:
    result = plan(prepared / "manifest.json", "dev", None, "us-east-1", "123456789012")
    assert result["accepted"], result
    channels = result["run"]["data"]["channels"]
    assert [c["name"] for c in channels] == ["train", "validation"]
    assert all(c["attribute_names"] == ["source-ref", "class"] for c in channels)
    assert all(c["form"]["s3_data_type"] == "AugmentedManifestFile" for c in channels)


def test_a_manifest_with_windows_line_endings_or_no_line_breaks_is_named_as_such() -> None:
    from pipeline.dataset.lst import chunk_lines

    with pytest.raises(DatasetError) as raised:
        list(chunk_lines([line().encode() + b"\r\n" + line().encode()], WHERE))
    assert str(raised.value) == (
        f"{WHERE}, line 1: Windows (CRLF) line ending. Convert the file to LF line endings (e.g. dos2unix)."
    )
    with pytest.raises(DatasetError, match=r"line 1: longer than 64 KiB. A line is one JSON object; check the line"):
        list(chunk_lines([b"x" * (65 * 1024)], WHERE))


def test_a_count_the_manifest_contradicts_names_the_augmented_manifest(prepared: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "digits"
    shutil.copytree(prepared, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "num_training_samples": 5}))
    result = plan(folder / "manifest.json", "dev", None, "us-east-1", "123456789012")
    assert result["message"].endswith(
        "'num_training_samples' is 5 but train.manifest lists 1438 images. Remove the key (it is counted from "
        "train.manifest) or correct it."
    )


def test_relative_source_refs_become_the_datasets_and_broken_lines_are_left_for_validation() -> None:
    from tools.dataset import with_dataset_uris

    body = b'{"source-ref": "train/a.png", "class": 0}\n{broken\n{"source-ref": "s3://b/x.png", "class": 1}\n'
    assert with_dataset_uris(body, URI).split(b"\n") == [
        json.dumps({"source-ref": URI + "train/a.png", "class": 0}).encode(),
        b"{broken",
        b'{"source-ref": "s3://b/x.png", "class": 1}',
        b"",
    ]
    assert with_dataset_uris(b"\xff\xfe", URI) == b"\xff\xfe"


def test_an_augmented_test_split_sizes_the_transform_by_its_largest_image(
    small_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "digits"
    prepare(small_images, out, format="augmented_manifest", test_fraction=0.2, progress=False)
    test_images = [p for p in (out / "test").rglob("*") if p.is_file()]
    sizes = [p.stat().st_size for p in test_images]
    largest = max(sizes)  # the files on disk, not the code's count
    assert min(sizes) < largest  # the largest is not just any image
    bucket = BUCKET
    with uploaded(out) as (s3, event):
        run = validate_dataset(event, TuningSettings().to_dict(), s3)
        # a limit below the largest image (100 MB objects in moto are slow): refused, naming it
        monkeypatch.setattr(leakage, "MAX_PAYLOAD_MB", (largest - 1) / 1_000_000)
        refusal = rf"^s3://{bucket}/datasets/digits/test.manifest: names s3://{bucket}/datasets/digits/test/"
        with pytest.raises(DatasetError, match=refusal):
            validate_dataset(event, TuningSettings().to_dict(), s3)
    assert run.data.test is not None and run.data.test.num_samples == len(test_images)
    assert run.data.test.largest_image_bytes == largest
