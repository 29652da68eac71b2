"""Held out means held out: no image in two splits, by key or by content, and a split is present or
absent, never half. Each refusal names the files and lines, and the upload is left as it was.

The datasets are built by hand here, so every expected line number is read off the fixture:
good_files() writes image i of a split on line i + 1 of its index.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline.aws.errors import DatasetError
from pipeline.dataset.leakage import Leakage, Sighting
from pipeline.dataset.listing import Listed
from pipeline.dataset.validation import validate_dataset
from pipeline.settings.tuning_settings import TuningSettings
from tests.test_bad_input import BUCKET, PREFIX, REGION, good_files, snapshot, upload

URI = f"s3://{BUCKET}/{PREFIX}"
WARN = dataclasses.replace(TuningSettings(), copies_across_splits="warn").to_dict()


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def refused(s3: Any, files: dict[str, bytes], defaults: dict[str, Any] | None = None) -> str:
    event = upload(s3, files)
    before = snapshot(s3)
    with pytest.raises(DatasetError) as raised:
        validate_dataset(event, defaults or TuningSettings().to_dict(), s3)
    assert snapshot(s3) == before  # validation only reads
    return str(raised.value)


def with_test(files: dict[str, bytes], n: int = 6, classes: int = 3) -> dict[str, bytes]:
    lines = []
    for i in range(n):
        files[f"test/c{i % classes}/{i}.png"] = f"png test {i}".encode()
        lines.append(f"{i}\t{i % classes}\tc{i % classes}/{i}.png")
    files["test_lst/test.lst"] = ("\n".join(lines) + "\n").encode()
    return files


# ---------------------------------------------------------------------- copies across splits


def test_a_test_image_copied_from_train_is_refused_naming_both_lines_and_the_count(s3) -> None:
    files = with_test(good_files())
    files["test/c1/1.png"] = files["train/c1/4.png"]  # test line 2 copies train line 5
    files["test/c2/5.png"] = files["train/c2/20.png"]  # test line 6 copies train line 21
    message = refused(s3, files)
    assert message.startswith(f"{URI}train_lst/train.lst, line 5 names {URI}train/c1/4.png, a byte-for-byte copy")
    assert f"of {URI}test/c1/1.png ({URI}test_lst/test.lst, line 2)" in message
    assert "2 images are copies of another split's" in message
    assert f"{URI}train_lst/train.lst, line 21 and {URI}test_lst/test.lst, line 6" in message
    assert "set copies_across_splits to 'warn' in cdk.json" in message


def test_a_validation_image_copied_into_test_is_a_leak_too(s3) -> None:
    files = with_test(good_files())
    files["test/c0/3.png"] = files["validation/c0/0.png"]
    message = refused(s3, files)
    assert f"{URI}test_lst/test.lst, line 4 names {URI}test/c0/3.png" in message
    assert (
        f"({URI}validation_lst/validation.lst, line 1)" in message and "1 image is a copy of another split's" in message
    )


def test_copies_inside_one_split_are_not_leaks(s3) -> None:
    files = with_test(good_files())
    files["train/c1/7.png"] = files["train/c1/4.png"]
    files["test/c0/3.png"] = files["test/c0/0.png"]
    run = validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    assert run.data.test is not None and run.data.warnings == ()


def test_under_warn_a_copy_goes_ahead_with_the_warning_in_the_run(s3) -> None:
    files = with_test(good_files())
    files["test/c1/1.png"] = files["train/c1/4.png"]
    run = validate_dataset(upload(s3, files), WARN, s3)
    (warning,) = run.data.warnings
    assert f"{URI}train_lst/train.lst, line 5 names {URI}train/c1/4.png" in warning
    assert "registered pending manual approval" in warning
    assert run.to_dict()["data"]["warnings"] == [warning]  # carried by the run contract


def test_an_image_in_two_augmented_manifests_is_refused_even_under_warn(s3) -> None:
    files = {}
    lines: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for split, n in (("train", 24), ("validation", 6), ("test", 6)):
        for i in range(n):
            files[f"images/{split}-{i}.png"] = f"png {split} {i}".encode()
            lines[split].append(json.dumps({"source-ref": f"{URI}images/{split}-{i}.png", "class": i % 3}))
    lines["test"][3] = lines["train"][9]  # test.manifest line 4 is train.manifest line 10
    lines["validation"][0] = lines["train"][0]
    for split, text in lines.items():
        files[f"{split}.manifest"] = ("\n".join(text) + "\n").encode()
    files["manifest.json"] = b'{"format": "augmented_manifest"}'
    message = refused(s3, files, WARN)
    assert message.startswith(
        f"{URI}train.manifest, line 1 names {URI}images/train-0.png, which {URI}validation.manifest, line 1 "
        "already names: an image in two splits (train and validation)."
    )
    assert "2 images are named in two splits" in message
    assert f"also {URI}train.manifest, line 10 and {URI}test.manifest, line 4" in message


def test_equal_etags_match_only_at_equal_size_and_a_multipart_etag_only_its_own_part_count() -> None:
    leakage = Leakage()
    seen = Sighting("test", "t.lst", 1, "s3://b/test/a.png")
    leakage.see(seen, Listed(10, "0123abcd-2"))
    leakage.see(Sighting("test", "t.lst", 2, "s3://b/test/b.png"), Listed(10, "0123abcd"))
    for line, listed in enumerate([Listed(10, "0123abcd-3"), Listed(11, "0123abcd-2"), Listed(10, "0123abcd-2")]):
        leakage.see(Sighting("train", "train.lst", line + 1, f"s3://b/train/{line}.png"), listed, keep=False)
    assert leakage.same_content.count == 1 and leakage.same_content.shown == [
        (seen, Sighting("train", "train.lst", 3, "s3://b/train/2.png"))
    ]


# ---------------------------------------------------------------------- present or absent, never half


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.pop("test_lst/test.lst"),
            f"{URI}test_lst/: missing or empty, but {URI}test/ is there, which asks for a test split",
        ),
        (
            lambda f: [f.pop(k) for k in [k for k in f if k.startswith("test/")]],
            f"{URI}test/: missing or empty, but {URI}test_lst/ is there",
        ),
        (lambda f: f.update({"test_lst/test.lst": b""}), f"{URI}test_lst/test.lst: the file is empty"),
        (lambda f: f.update({"test_lst/test.lst": b"\n\n"}), f"{URI}test_lst/test.lst: the file is empty"),
        (
            lambda f: f.update({"test_lst/notes.txt": b"x"}) or f.pop("test_lst/test.lst"),
            f"{URI}test_lst/: expected exactly one .lst file, found 0 (notes.txt)",
        ),
        (
            lambda f: f.update({"test/c2/2.png": b""}),
            f"{URI}test_lst/test.lst, line 3: {URI}test/c2/2.png is empty (0 bytes)",
        ),
    ],
    ids=["images without index", "index without images", "0-byte index", "blank index", "no .lst", "0-byte image"],
)
def test_a_half_test_split_is_refused_not_skipped(s3, change, expected: str) -> None:
    files = with_test(good_files())
    change(files)
    assert expected in refused(s3, files)


def test_a_test_folder_made_in_the_console_and_left_empty_is_refused(s3) -> None:
    files = with_test(good_files())
    for key in [k for k in files if k.startswith("test")]:
        del files[key]
    files["test/"] = b""  # the S3 console's "Create folder"
    assert f"{URI}test/: missing or empty, but {URI}test_lst/ is there" not in (message := refused(s3, files))
    assert f"{URI}test_lst/: missing or empty, but {URI}test/ is there" in message


def test_an_empty_test_manifest_is_refused_not_skipped(s3) -> None:
    files = {}
    for split, n in (("train", 24), ("validation", 6)):
        text = []
        for i in range(n):
            files[f"images/{split}-{i}.png"] = f"png {split} {i}".encode()
            text.append(json.dumps({"source-ref": f"{URI}images/{split}-{i}.png", "class": i % 3}))
        files[f"{split}.manifest"] = ("\n".join(text) + "\n").encode()
    files["manifest.json"] = b'{"format": "augmented_manifest"}'
    files["test.manifest"] = b""
    assert f"{URI}test.manifest: the file is empty (no line names an image)" in refused(s3, files)


def recordio(files: dict[str, bytes]) -> dict[str, bytes]:
    files.update({"train/a.rec": b"rec", "validation/b.rec": b"rec"})
    files["manifest.json"] = b'{"format": "recordio", "num_classes": 3, "num_training_samples": 900}'
    return files


def test_a_recordio_dataset_refuses_an_empty_rec_file_and_a_test_split_it_cannot_run(s3) -> None:
    empty = recordio({"validation/c.rec": b""})
    assert refused(s3, empty) == (
        f"{URI}validation/c.rec: empty (0 bytes). The algorithm reads every file under validation/ and a RecordIO "
        "file holds at least one record: upload it again, or remove it."
    )
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}validation/c.rec")
    with_split = recordio({"test/c.rec": b"rec"})
    message = refused(s3, with_split)
    assert message.startswith(f"{URI}test/: a test split is read from image files")
    assert "this RecordIO dataset would run without one" in message


# ---------------------------------------------------------------------- labels of held-out splits


def test_a_held_out_split_may_lack_a_class_of_training(s3) -> None:
    files = with_test(good_files())
    lines = [line for line in files["validation_lst/validation.lst"].decode().splitlines() if "\t1\t" not in line]
    files["validation_lst/validation.lst"] = ("\n".join(lines) + "\n").encode()
    run = validate_dataset(upload(s3, files), TuningSettings().to_dict(), s3)
    assert (run.data.num_classes, run.data.num_validation_samples) == (3, 4)


def test_a_held_out_label_beyond_training_is_refused_without_advice_to_renumber(s3) -> None:
    files = with_test(good_files())
    files["test_lst/test.lst"] = files["test_lst/test.lst"].replace(b"\t2\t", b"\t3\t", 1)
    message = refused(s3, files)
    assert message.startswith(f"{URI}test_lst/test.lst: the test split has labels up to 3 but training only 2")
    assert "do not renumber it on its own" in message and "Renumber the classes" not in message


def test_a_leak_message_shows_three_examples_and_counts_them_all() -> None:
    from pipeline.dataset.leakage import SHOWN, Matches, Sighting, _others

    assert SHOWN == 3
    matches = Matches()
    for n in range(1, 6):
        matches.add(
            Sighting("train", "train.lst", n, f"s3://b/{n}"), Sighting("test", "test.lst", n + 10, f"s3://b/{n}")
        )
    assert (matches.count, len(matches.shown)) == (5, 3)
    # The first pair is the message's subject; the others shown follow it, the count says the rest.
    assert (
        _others(matches) == " (also test.lst, line 12 and train.lst, line 2; test.lst, line 13 and train.lst, line 3)"
    )
    single = Matches()
    single.add(Sighting("train", "train.lst", 1, "u"), Sighting("test", "test.lst", 2, "u"))
    assert _others(single) == ""
