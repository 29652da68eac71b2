"""Held out means held out: no image in two splits, by name or by content.

An image of the validation split that is also trained on inflates the objective every job is
chosen by; one of the test split inflates the registered test accuracy that auto-approval reads.
Validation and test register their images first; the training split is then only looked up, so
what is kept in memory is the two smaller splits.

Two kinds of match, each named with both files and lines and counted:

- the same image (one S3 key, or one augmented manifest `source-ref`) in two splits: always refused;
- the same content under other keys (a "test" folder copied from `train/`): the listing's size and
  ETag, which validation already holds, so no extra request. Equal ETags of equal size are equal
  content for single-part uploads; a multipart ETag (`<hash>-<parts>`) only ever equals one of
  the same part count, and the same content uploaded in other parts, re-encoded or resized is
  not seen. Under SSE-KMS or SSE-C the ETag is not the MD5 of the content (S3 API reference,
  Object.ETag), so there two uploads of the same bytes need not match. `copies_across_splits`
  (cdk.json) says whether a match refuses the run or becomes a warning in its notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.aws.errors import DatasetError
from pipeline.dataset.listing import Listed
from pipeline.settings.limits import MAX_PAYLOAD_MB, MB

if TYPE_CHECKING:
    from pipeline.settings.tuning_settings import TuningSettings

TRAIN = "train"

SHOWN = 3  # examples named in a message; the count says how many there are in all


@dataclass(frozen=True)
class Sighting:
    """Where an image was named: its split, the index file and line, and its S3 URI."""

    split: str
    where: str
    line: int
    uri: str

    def __str__(self) -> str:
        return f"{self.where}, line {self.line}"


@dataclass
class Matches:
    """Pairs (earlier split's sighting, later split's sighting) of one kind, and how many."""

    shown: list[tuple[Sighting, Sighting]] = field(default_factory=list)
    count: int = 0

    def add(self, earlier: Sighting, later: Sighting) -> None:
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append((earlier, later))


class Leakage:
    """The images of the held-out splits seen so far, by URI and by content."""

    def __init__(self) -> None:
        self._by_uri: dict[str, Sighting] = {}
        self._by_content: dict[Listed, Sighting] = {}
        self.same_image = Matches()
        self.same_content = Matches()

    def see(self, sighting: Sighting, listed: Listed, *, keep: bool = True) -> None:
        """Compare an image with the earlier splits' and, when `keep`, remember it for the later ones."""
        earlier = self._by_uri.get(sighting.uri)
        if earlier is not None and earlier.split != sighting.split:
            self.same_image.add(earlier, sighting)
        else:
            copy = self._by_content.get(listed) if listed.etag and listed.size > 0 else None
            if copy is not None and copy.split != sighting.split:
                self.same_content.add(copy, sighting)
        if keep:
            self._by_uri.setdefault(sighting.uri, sighting)
            self._by_content.setdefault(listed, sighting)

    def same_image_problem(self) -> str | None:
        """Why the splits share images, or None. Always a refusal."""
        if not self.same_image.count:
            return None
        first, second = self.same_image.shown[0]
        return (
            f"{second} names {second.uri}, which {first} already names: an image in two splits "
            f"({second.split} and {first.split}). {_count(self.same_image, SHARED)}"
            f"{_others(self.same_image)}. A held-out split must hold images no training job saw (test) or was "
            "chosen by (validation): remove each from all but one split."
        )

    def copies_problem(self, *, refuse: bool) -> str | None:
        """Why some images of one split are copies of another's, or None; `refuse`: the
        deployment refuses such a run (else the text is the run's warning)."""
        if not self.same_content.count:
            return None
        first, second = self.same_content.shown[0]
        found = (
            f"{second} names {second.uri}, a byte-for-byte copy of {first.uri} ({first}): same size and ETag, "
            f"in {second.split} and {first.split}. {_count(self.same_content, COPY)}"
            f"{_others(self.same_content)}. "
        )
        if refuse:
            return found + (
                "Remove the copies from all but one split, so the held-out accuracy is not inflated; if the "
                "duplicates are meant (identical frames, say), the team that deploys the stack can set "
                "copies_across_splits to 'warn' in cdk.json."
            )
        return found + (
            "The deployment lets such a run go ahead (copies_across_splits: warn): its accuracy may be inflated, "
            "so the model is registered pending manual approval."
        )


SHARED = ("is named in two splits", "are named in two splits")
COPY = ("is a copy of another split's", "are copies of another split's")


def _count(matches: Matches, phrases: tuple[str, str]) -> str:
    one, many = phrases
    return f"1 image {one}" if matches.count == 1 else f"{matches.count:,} images {many}"


def _others(matches: Matches) -> str:
    rest = [f"{later} and {earlier}" for earlier, later in matches.shown[1:]]
    return f" (also {'; '.join(rest)})" if rest else ""


class Images:
    """The images one split's index may name, from the listing: each must exist and not be empty.
    Keeps the largest named (one record of the test split's batch transform, which MaxPayloadInMB
    must take) and shows each image to the leakage check."""

    def __init__(self, listed: dict[str, Listed], split: str, where: str, prefix_uri: str, leakage: Leakage) -> None:
        self.listed, self.split, self.where, self.prefix_uri, self.leakage = listed, split, where, prefix_uri, leakage
        self.bytes, self.key = 0, ""

    def exists(self, key: str) -> bool:
        return key in self.listed

    def named(self, line: int, key: str) -> None:
        item = self.listed[key]
        if item.size == 0:
            raise DatasetError(
                f"{self.where}, line {line}: {self.prefix_uri}{key} is empty (0 bytes); the algorithm cannot "
                "decode it. Upload the image again, or remove the line."
            )
        if item.size > self.bytes:
            self.bytes, self.key = item.size, key
        # The training split is looked up only: it is the last and largest one scanned.
        keep = self.split != TRAIN
        self.leakage.see(Sighting(self.split, self.where, line, self.prefix_uri + key), item, keep=keep)

    def check_payload(self) -> int:
        if self.bytes > MAX_PAYLOAD_MB * MB:
            raise DatasetError(
                f"{self.where}: names {self.prefix_uri}{self.key}, {self.bytes / MB:,.1f} MB; a batch transform takes "
                f"records of at most {MAX_PAYLOAD_MB} MB, one image each here. Downscale it, or leave it out of "
                "the test split."
            )
        return self.bytes


def checked_leakage(leakage: Leakage, settings: TuningSettings) -> tuple[str, ...]:
    """Refuse images shared by two splits; copies by content as the deployment says. The warnings left."""
    problem = leakage.same_image_problem()
    if problem:
        raise DatasetError(problem)
    refuse = settings.copies_across_splits == "refuse"
    copies = leakage.copies_problem(refuse=refuse)
    if copies and refuse:
        raise DatasetError(copies)
    return (copies,) if copies else ()
