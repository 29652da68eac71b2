"""The dataset's layout and its `manifest.json`: the formats and their channels, the manifest's
keys parsed (duplicates refused, the line of each key found for the message), the dataset's name.
Pure functions, no AWS calls.

A dataset is the prefix `datasets/<name>/` of the dataset bucket:

    datasets/<name>/train/...              training images (or .rec files)
    datasets/<name>/validation/...         validation images (or .rec files)
    datasets/<name>/train_lst/train.lst    image format only
    datasets/<name>/validation_lst/validation.lst
    datasets/<name>/test/, test_lst/test.lst   the held-out test split, if any
    datasets/<name>/train.manifest, validation.manifest (test.manifest)   augmented-manifest format instead
    datasets/<name>/manifest.json          written last: creating it starts the pipeline

Every error names the file, the line (or key) and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.aws import s3_layout
from pipeline.aws.errors import DatasetError, SettingsError
from pipeline.aws.input_forms import INPUT_FORMATS
from pipeline.contract import DatasetRef
from pipeline.settings.tuning_settings import TuningSettings

# The held-out split's channels (image files) and file (augmented manifests).
TEST_CHANNEL, TEST_LST_CHANNEL, TEST_MANIFEST = "test", "test_lst", "test.manifest"
DATASET_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$")
# Image files with .lst, RecordIO, or augmented manifests (JSON Lines, as Ground Truth writes them).
FORMATS = tuple(INPUT_FORMATS)  # the formats and what each implies: pipeline/aws/input_forms.py
LABELLED_FORMATS = tuple(f for f, facts in INPUT_FORMATS.items() if facts.label_attribute)
COUNTED_BY_MANIFEST = tuple(f for f, facts in INPUT_FORMATS.items() if facts.counts_stated)
IMAGE_CHANNELS = ("train", "validation", "train_lst", "validation_lst")
RECORDIO_CHANNELS = ("train", "validation")
# "$schema": where an editor finds schema/manifest.schema.json; validation ignores its value.
MANIFEST_KEYS = (
    "$schema",
    "format",
    "description",
    "num_classes",
    "num_training_samples",
    "label_attribute",
    "tuning",
)
# The attribute of an augmented manifest's lines that holds the class (Ground Truth names it
# after the labeling job); at most 256 characters, like each of the request's AttributeNames.
DEFAULT_LABEL_ATTRIBUTE = "class"
LABEL_ATTRIBUTE_MAX = 256


@dataclass(frozen=True)
class Manifest:
    format: str
    tuning: Mapping[str, Any]
    num_classes: int | None = None
    num_training_samples: int | None = None
    label_attribute: str = DEFAULT_LABEL_ATTRIBUTE


def dataset_ref_from_key(bucket: str, key: str, version_id: str) -> DatasetRef:
    """The dataset a manifest key belongs to, or DatasetError for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != s3_layout.DATASETS or parts[2] != s3_layout.MANIFEST_NAME:
        raise DatasetError(
            f"s3://{bucket}/{key}: not a dataset manifest. The pipeline starts only for "
            f"'{s3_layout.DATASETS}<name>/{s3_layout.MANIFEST_NAME}'; upload the manifest there, last."
        )
    name = parts[1]
    if not DATASET_NAME_PATTERN.match(name):
        raise DatasetError(
            f"s3://{bucket}/{key}: dataset name {name!r} must be 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit. Rename the prefix."
        )
    return DatasetRef(bucket=bucket, name=name, manifest_key=key, version_id=version_id)


def _line_of(text: str, key: str, occurrence: int = 1) -> int | None:
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        seen += line.count(f'"{key}"')
        if seen >= occurrence:
            return number
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise _DuplicateKey(key)
    return dict(pairs)


def parse_manifest(text: str, where: str, defaults: TuningSettings) -> tuple[Manifest, TuningSettings]:
    """Parse and validate a manifest; return it with the settings it resolves to."""
    try:
        data = json.loads(text, object_pairs_hook=_without_duplicates)
    except _DuplicateKey as dup:
        raise DatasetError(
            f"{where}, line {_line_of(text, dup.key, occurrence=2)}: key {dup.key!r} appears twice in one object; "
            "JSON readers disagree on which one counts. Keep one."
        ) from None
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{where}, line {exc.lineno}: not valid JSON ({exc.msg}). "
            'Fix the syntax; a minimal manifest is {"format": "image"}.'
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(f'{where}, line 1: the manifest must be a JSON object, e.g. {{"format": "image"}}')
    unknown = sorted(set(data) - set(MANIFEST_KEYS))
    if unknown:
        raise DatasetError(
            f"{where}, line {_line_of(text, unknown[0])}: unknown key {unknown[0]!r}. "
            f"Allowed keys: {', '.join(MANIFEST_KEYS)}"
        )
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise DatasetError(
            f"{where}, line {_line_of(text, 'format') or 1}: key 'format' must be one of "
            f"{', '.join(FORMATS)}, got {fmt!r}"
        )
    counts: dict[str, int | None] = {}
    for key in ("num_classes", "num_training_samples"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DatasetError(
                f"{where}, line {_line_of(text, key)}: key {key!r} must be a positive integer, got {value!r}"
            )
        counts[key] = value
    stated = INPUT_FORMATS[fmt].counts_stated
    if stated and (counts["num_classes"] is None or counts["num_training_samples"] is None):
        raise DatasetError(
            f"{where}: {INPUT_FORMATS[fmt].title} datasets must state 'num_classes' and 'num_training_samples' "
            "(the pipeline cannot count records without reading them). Add both keys."
        )
    label_attribute = _label_attribute(data, fmt, where, text)
    tuning = data.get("tuning", {})
    try:
        settings = TuningSettings.from_manifest(tuning, where=f"{where} 'tuning'", deployment=defaults)
    except SettingsError as exc:
        first_key = next(iter(tuning), None) if isinstance(tuning, dict) else None
        line = _line_of(text, str(exc).split("key '")[-1].split("'")[0]) or _line_of(text, first_key or "tuning")
        raise DatasetError(f"{exc} (line {line})") from None
    manifest = Manifest(
        format=fmt,
        tuning=tuning,
        num_classes=counts["num_classes"],
        num_training_samples=counts["num_training_samples"],
        label_attribute=label_attribute,
    )
    return manifest, settings


def _label_attribute(data: dict[str, Any], fmt: str, where: str, text: str) -> str:
    if "label_attribute" not in data:
        return DEFAULT_LABEL_ATTRIBUTE
    value, line = data["label_attribute"], _line_of(text, "label_attribute")
    if not INPUT_FORMATS[fmt].label_attribute:
        named = " or ".join(repr(f) for f in LABELLED_FORMATS)
        raise DatasetError(f"{where}, line {line}: 'label_attribute' only applies to format {named}. Remove it.")
    if not isinstance(value, str) or not value or len(value) > LABEL_ATTRIBUTE_MAX or value == "source-ref":
        raise DatasetError(
            f"{where}, line {line}: 'label_attribute' must name the attribute of the manifest lines that holds "
            f"the class (1-{LABEL_ATTRIBUTE_MAX} characters, not 'source-ref'), got {value!r}."
        )
    return value
