"""The training jobs' input channels, and how each input format's channels reach the algorithm, in the
words of CreateTrainingJob's `Channel`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class InputForm:
    """How a channel's data reaches the algorithm, in the words of CreateTrainingJob's `Channel` (as
    the SageMaker SDK's `TrainingInput` carries them). Each format has one (`INPUT_FORMATS`), which
    validation gives each channel; the request builder writes it out and decides nothing."""

    content_type: str
    # "AugmentedManifestFile": the channel's URI is the manifest itself.
    s3_data_type: Literal["S3Prefix", "AugmentedManifestFile"] = "S3Prefix"
    # "RecordIO": each record wrapped before the algorithm reads it.
    record_wrapper: Literal["RecordIO"] | None = None
    input_mode: Literal["File", "Pipe"] | None = None  # "Pipe": streamed; None: the job's (File)


@dataclass(frozen=True)
class InputFormat:
    """One input format: how its channels reach the algorithm, and what else the pipeline decides by
    the format, said here once (the manifest's parser and schema, validation and the request read it)."""

    title: str  # as a message names it
    form: InputForm
    raw_images: bool  # the algorithm decodes images (files or a manifest's records): `resize` is required
    counts_stated: bool = False  # its records are not read: the manifest must state the counts
    label_attribute: bool = False  # the manifest may name the attribute holding the class


# The algorithm's input formats ("Image classification algorithm" page, Input/Output interface;
# docs/reference/DOMAIN.md). A new format is one entry here and a reader in dataset/ (validation.READERS).
INPUT_FORMATS = {
    # image files under S3 prefixes, with their .lst
    "image": InputFormat("image-file", InputForm("application/x-image"), raw_images=True),
    # .rec files under S3 prefixes, already decoded and resized when packed
    "recordio": InputFormat("RecordIO", InputForm("application/x-recordio"), raw_images=False, counts_stated=True),
    # the manifest file itself, each record wrapped in RecordIO, streamed (Pipe)
    "augmented_manifest": InputFormat(
        "augmented-manifest",
        InputForm("application/x-recordio", "AugmentedManifestFile", "RecordIO", "Pipe"),
        raw_images=True,
        label_attribute=True,
    ),
}


@dataclass(frozen=True)
class Channel:
    """One input channel of the training jobs: its name, what it reads, and in which form. Set once,
    by validation."""

    name: str
    uri: str
    form: InputForm
    # AugmentedManifestFile: the attributes each record passes to the algorithm, image first.
    attribute_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "attribute_names": list(self.attribute_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Channel:
        return cls(d["name"], d["uri"], InputForm(**d["form"]), tuple(d.get("attribute_names", ())))


def channels_from_dict(d: dict[str, Any]) -> tuple[Channel, ...]:
    """The channels of a Data dict, also as a release before 2026-12-07 wrote them: a run queued at
    Admit when a new release is deployed carries that state ({name: uri}; the form was the format's,
    the augmented manifest's attribute names sat beside them)."""
    if not isinstance(d["channels"], dict):
        return tuple(Channel.from_dict(c) for c in d["channels"])
    form, names = INPUT_FORMATS[d["format"]].form, tuple(d.get("attribute_names", ()))
    return tuple(Channel(name, uri, form, names) for name, uri in d["channels"].items())
