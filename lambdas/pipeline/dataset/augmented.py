"""Augmented manifests: JSON Lines, one object per image with `source-ref` and a class attribute.

This is what SageMaker Ground Truth writes, and the algorithm's third input format ("Image
classification algorithm" page: `S3DataType` AugmentedManifestFile, `AttributeNames` image
first and label second, `RecordWrapperType` RecordIO, Pipe input mode, content type
application/x-recordio). Like a `.lst`, a manifest is checked line by line as it streams; every
error names the file, the line and the fix.

A dataset in this format keeps `train.manifest` and `validation.manifest` at the top of its
prefix, and every `source-ref` points inside that prefix: the training role reads nothing else.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.aws.errors import DatasetError
from pipeline.dataset.lst import IMAGE_EXTENSIONS, LstSummary, classes_of

SOURCE_REF = "source-ref"
DEFAULT_LABEL_ATTRIBUTE = "class"
MANIFEST_FILES = {"train": "train.manifest", "validation": "validation.manifest"}


@dataclass(frozen=True)
class Record:
    line: int
    source_ref: str
    label: int


def _label(value: object, attribute: str, where: str, number: int) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() and value >= 0:
        return int(value)
    raise DatasetError(
        f"{where}, line {number}: {attribute!r} is {value!r}, not a class number. Labels are integers "
        "0..num_classes-1 (the manifest's 'label_attribute' names the attribute that holds them)."
    )


def parse_record(number: int, line: str, where: str, *, label_attribute: str, dataset_uri: str) -> Record | None:
    """One line as a record, None for a blank line, or DatasetError naming the line and the fix."""
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}, line {number}: not valid JSON ({exc.msg}). One JSON object per line.") from None
    if not isinstance(item, dict):
        raise DatasetError(f"{where}, line {number}: not a JSON object. One object per line, with {SOURCE_REF!r}.")
    ref = item.get(SOURCE_REF)
    if not isinstance(ref, str) or not ref:
        raise DatasetError(f"{where}, line {number}: no {SOURCE_REF!r}. Each line names its image's S3 URI there.")
    relative = ref.removeprefix(dataset_uri)
    if not ref.startswith(dataset_uri) or not relative or ".." in relative.split("/"):
        raise DatasetError(
            f"{where}, line {number}: {SOURCE_REF} {ref!r} is outside the dataset ({dataset_uri}). Copy the image "
            "under the dataset's prefix and point there: the training jobs may read nothing else."
        )
    if not relative.lower().endswith(IMAGE_EXTENSIONS):
        raise DatasetError(
            f"{where}, line {number}: {ref!r} is not a .jpg, .jpeg or .png image, the formats the algorithm "
            "reads. Convert the image, or remove the line."
        )
    if label_attribute not in item:
        raise DatasetError(
            f"{where}, line {number}: no {label_attribute!r} attribute. Add the class number, or set the "
            "manifest's 'label_attribute' to the attribute that holds it."
        )
    return Record(line=number, source_ref=ref, label=_label(item[label_attribute], label_attribute, where, number))


def scan_augmented(
    lines: Iterable[tuple[int, str]],
    where: str,
    *,
    label_attribute: str,
    dataset_uri: str,
    exists: Callable[[str], bool] | None = None,
    on_record: Callable[[Record], None] | None = None,
    training: bool = True,
) -> LstSummary:
    """Check every line; return the number of images and of classes. `exists(relative key)`
    says whether the image is in the dataset; `training` as for `lst.scan_lst`."""
    labels: Counter[int] = Counter()
    for number, line in lines:
        record = parse_record(number, line, where, label_attribute=label_attribute, dataset_uri=dataset_uri)
        if record is None:
            continue
        if exists is not None and not exists(record.source_ref.removeprefix(dataset_uri)):
            raise DatasetError(
                f"{where}, line {number}: {record.source_ref} does not exist. Upload the image or remove the line."
            )
        labels[record.label] += 1
        if on_record is not None:
            on_record(record)
    if not labels:
        raise DatasetError(
            f"{where}: the file is empty (no line names an image). Write one JSON object per image: "
            f"{SOURCE_REF} and the class."
        )
    return LstSummary(images=sum(labels.values()), classes=classes_of(labels, where, training=training))
