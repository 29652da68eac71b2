"""`.lst` files (`index<TAB>label<TAB>relative/path` per line), checked line by line as they stream.

A `.lst` of an ImageNet-size dataset is ~70 MB and 1.28M lines: it is never held whole. Each line
is checked as it arrives (columns, index, label, path, extension, that the image exists), and
only what later checks need is kept: the indexes seen and a count per label.

Every error names the file, the line and the fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pipeline.aws.errors import DatasetError

# "Image classification algorithm" page: the image-file format reads .jpg and .png images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
BOM = "\ufeff"
# A longer line is no `.lst` line; without this, a file with no line break would be held whole.
MAX_LINE_BYTES = 64 * 1024

Lines = Iterable[tuple[int, str]]


@dataclass(frozen=True)
class LstEntry:
    line: int
    index: int
    label: int
    path: str


@dataclass(frozen=True)
class LstSummary:
    images: int
    classes: int


def _is_manifest(where: str) -> bool:
    """Augmented manifests (JSON Lines) stream through the same line reader as `.lst` files."""
    return where.endswith(".manifest")


def _crlf(where: str, number: int) -> DatasetError:
    why = "" if _is_manifest(where) else "The algorithm reads the path with the '\\r' attached: "
    return DatasetError(
        f"{where}, line {number}: Windows (CRLF) line ending. {why}Convert the file to LF line endings (e.g. dos2unix)."
    )


def _first_line(where: str, line: str) -> None:
    if line.startswith(BOM):
        raise DatasetError(f"{where}, line 1: starts with a UTF-8 byte-order mark. Save the file as UTF-8 without BOM.")


def text_lines(text: str, where: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of a `.lst` held in memory."""
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1:
            _first_line(where, line)
        if "\r" in line:
            raise _crlf(where, number)
        yield number, line


def chunk_lines(chunks: Iterable[bytes], where: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of a `.lst` arriving in chunks of bytes (an S3 object's body)."""
    pending, number = b"", 0
    for chunk in chunks:
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            number += 1
            yield number, _decode(raw, where, number)
        if len(pending) > MAX_LINE_BYTES:
            shape = "one JSON object" if _is_manifest(where) else "index<TAB>label<TAB>path"
            raise DatasetError(
                f"{where}, line {number + 1}: longer than {MAX_LINE_BYTES // 1024} KiB. A line is {shape}; "
                "check the line breaks (LF) of the file."
            )
    number += 1
    yield number, _decode(pending, where, number)


def _decode(raw: bytes, where: str, number: int) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{where}, line {number}: not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None
    if number == 1:
        _first_line(where, line)
    if "\r" in line:
        raise _crlf(where, number)
    return line


def parse_line(number: int, line: str, where: str) -> LstEntry | None:
    """One line as an entry, None for a blank line, or DatasetError naming the line and the fix."""
    if not line.strip():
        return None
    cols = line.split("\t")
    if len(cols) != 3:
        raise DatasetError(
            f"{where}, line {number}: expected 3 tab-separated columns "
            f"(index, label, path), found {len(cols)}. Separate columns with one TAB."
        )
    raw_index, raw_label, path = cols
    if not (raw_index.strip().isascii() and raw_index.strip().isdigit()):
        raise DatasetError(f"{where}, line {number}: index {raw_index!r} is not a non-negative integer.")
    try:
        label_value = float(raw_label)
    except ValueError:
        label_value = float("nan")
    if not label_value.is_integer() or label_value < 0:
        raise DatasetError(
            f"{where}, line {number}: label {raw_label!r} is not a class number. Labels are integers 0..num_classes-1."
        )
    if not path or path.startswith("/") or ".." in path.split("/") or "://" in path:
        raise DatasetError(
            f"{where}, line {number}: path {path!r} must be relative to the channel's prefix "
            "and stay inside it (no leading '/', no '..', no URL)."
        )
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        raise DatasetError(
            f"{where}, line {number}: {path!r} is not a .jpg, .jpeg or .png image, the formats the algorithm "
            "reads. Convert the image, or remove the line."
        )
    return LstEntry(line=number, index=int(raw_index), label=int(label_value), path=path)


def scan_lst(
    lines: Lines,
    where: str,
    *,
    exists: Callable[[str], bool] | None = None,
    channel_uri: str = "",
    rescan: Callable[[], Lines] | None = None,
    on_entry: Callable[[LstEntry], None] | None = None,
    training: bool = True,
) -> LstSummary:
    """Check every line; return the number of images and of classes.

    `exists(path)` says whether the image is in the channel; `rescan()` reads the file again,
    only to name the earlier line of a duplicated index. `training`: the split that defines the
    classes (contiguous from 0, at least two); a held-out split's labels are the training
    split's numbers and may leave some out (see `classes_of`)."""
    seen: set[int] = set()
    labels: Counter[int] = Counter()
    for number, line in lines:
        entry = parse_line(number, line, where)
        if entry is None:
            continue
        if entry.index in seen:
            first = _first_use(rescan() if rescan else (), entry.index, where)
            raise DatasetError(
                f"{where}, line {number}: index {entry.index} already used on {first}. Indexes must be unique."
            )
        seen.add(entry.index)
        if exists is not None and not exists(entry.path):
            raise DatasetError(
                f"{where}, line {number}: {channel_uri}{entry.path} does not exist. Upload the image or remove the line."
            )
        labels[entry.label] += 1
        if on_entry is not None:
            on_entry(entry)
    if not labels:
        raise DatasetError(
            f"{where}: the file is empty (no line names an image). List one line per image: index<TAB>label<TAB>path."
        )
    return LstSummary(images=sum(labels.values()), classes=classes_of(labels, where, training=training))


def _first_use(lines: Lines, index: int, where: str) -> str:
    """Where `index` is first used ("line 4"), or "an earlier line" when the file is not read again."""
    for number, line in lines:
        entry = parse_line(number, line, where)
        if entry is not None and entry.index == index:
            return f"line {number}"
    return "an earlier line"


def classes_of(labels: Iterable[int], where: str, *, training: bool) -> int:
    """The classes a split's labels span: counted and checked for the training split; for a
    held-out split, one more than its highest label (each must then be a training class)."""
    return class_count(labels, where) if training else max(labels) + 1


def class_count(labels: Iterable[int], where: str) -> int:
    """Labels must be 0..n-1 with none missing; return the number of classes."""
    present = sorted(set(labels))
    if len(present) < 2:
        raise DatasetError(f"{where}: only one class ({present[0]}). Classification needs at least two classes.")
    missing = sorted(set(range(present[-1] + 1)) - set(present))
    if missing:
        raise DatasetError(
            f"{where}: labels must be contiguous from 0; missing {missing[:10]}. Renumber the classes 0..num_classes-1."
        )
    return len(present)


def parse_lst(text: str, where: str) -> list[LstEntry]:
    """Every entry of a `.lst` held in memory (local tools and tests; validation streams instead)."""
    entries: list[LstEntry] = []
    scan_lst(text_lines(text, where), where, rescan=lambda: text_lines(text, where), on_entry=entries.append)
    return entries


def check_labels(entries: Iterable[LstEntry], where: str) -> int:
    return class_count((e.label for e in entries), where)
