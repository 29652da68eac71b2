"""The dataset CLI: class folders -> stratified split, .lst files, manifest; bad input explained."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from pipeline.dataset.lst import parse_lst
from tools.dataset import DatasetInputError, main, prepare, upload


def make_images(root: Path, classes: dict[str, int], size: tuple[int, int] = (16, 16)) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", size, (i * 10 % 255, 0, 0)).save(root / name / f"{i}.png")
    return root


def test_prepare_splits_each_class_and_writes_valid_lst_files(tmp_path: Path) -> None:
    images = make_images(tmp_path / "in", {"cat": 10, "dog": 20})
    result = prepare(images, tmp_path / "out", validation_fraction=0.2, progress=False)
    assert result.classes == ["cat", "dog"] and (result.train, result.validation) == (24, 6)
    train = parse_lst((tmp_path / "out/train_lst/train.lst").read_text(), "train.lst")
    val = parse_lst((tmp_path / "out/validation_lst/validation.lst").read_text(), "validation.lst")
    assert sorted(e.label for e in val) == [0, 0, 1, 1, 1, 1]  # stratified: 20% of each class
    assert all((tmp_path / "out/train" / e.path).exists() for e in train)
    assert not {e.path for e in train} & {e.path for e in val}
    assert json.loads((tmp_path / "out/manifest.json").read_text())["format"] == "image"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: root.mkdir(), "no class folders with images"),
        (lambda root: make_images(root, {"only": 5}), r"only one class \(only\)"),
        (
            lambda root: (
                make_images(root, {"a": 3, "b": 3}),
                (root / "b" / "broken.png").write_bytes(b"not an image"),
            ),
            "broken.png: not a readable image",
        ),
        (
            lambda root: (make_images(root, {"a": 3}), make_images(root, {"b": 3}, size=(20, 16))),
            "All images must have one size",
        ),
        (lambda root: make_images(root, {"a": 1, "b": 3}), "each class needs at least 2"),
    ],
    ids=["no classes", "one class", "unreadable image", "mixed sizes", "class too small"],
)
def test_bad_folders_get_a_clear_error_naming_the_file(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path / "in")
    with pytest.raises(DatasetInputError, match=message):
        prepare(tmp_path / "in", tmp_path / "out", progress=False)


def test_the_cli_reports_bad_input_on_stderr_with_exit_code_2(tmp_path: Path, capsys) -> None:
    make_images(tmp_path / "in", {"only": 3})
    assert main(["prepare", str(tmp_path / "in"), str(tmp_path / "out")]) == 2
    assert "only one class" in capsys.readouterr().err


@mock_aws
def test_upload_writes_the_manifest_last(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="pets-bucket")
    prepared = prepare(make_images(tmp_path / "in", {"a": 5, "b": 5}), tmp_path / "out", progress=False)
    seen_before_manifest: list[str] = []
    upload(
        prepared.root,
        s3,
        "pets-bucket",
        "pets",
        progress=False,
        before_manifest=lambda: seen_before_manifest.extend(
            o["Key"] for o in s3.list_objects_v2(Bucket="pets-bucket")["Contents"]
        ),
    )
    assert "datasets/pets/manifest.json" not in seen_before_manifest
    assert len(seen_before_manifest) == 12  # 10 images + 2 .lst files, all before the manifest
    assert "datasets/pets/manifest.json" in {o["Key"] for o in s3.list_objects_v2(Bucket="pets-bucket")["Contents"]}
