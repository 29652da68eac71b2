"""The `.lst` reader: line numbers, labels, duplicate indexes, named where they are."""

from __future__ import annotations

import pytest

from pipeline.aws.errors import (
    DatasetError,
)
from pipeline.dataset.lst import LstEntry, check_labels


def test_two_classes_are_enough_and_a_gap_is_named() -> None:
    two = [LstEntry(1, 0, 0, "a.png"), LstEntry(2, 1, 1, "b.png")]
    assert check_labels(two, "x.lst") == 2
    gaps = [LstEntry(i, i, label, f"{i}.png") for i, label in enumerate([0, *range(12, 30)])]
    with pytest.raises(DatasetError, match=r"missing \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]\. Renumber"):
        check_labels(gaps, "x.lst")


def test_lines_are_numbered_from_one_and_a_crlf_is_named_where_it_is() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import chunk_lines, text_lines

    assert list(text_lines("a\nb", "x.lst")) == [(1, "a"), (2, "b")]
    assert list(chunk_lines([b"a\nb"], "x.lst")) == [(1, "a"), (2, "b")]
    with pytest.raises(DatasetError, match=r"^x.lst, line 3: Windows \(CRLF\) line ending"):
        list(text_lines("a\nb\nc\r\nd", "x.lst"))
    with pytest.raises(DatasetError, match=r"^x.lst, line 1: starts with a UTF-8 byte-order mark"):
        list(text_lines("\ufeffa\nb", "x.lst"))
    assert list(text_lines("a\n\ufeffb", "x.lst")) == [(1, "a"), (2, "\ufeffb")]  # a BOM is only a BOM at the start


def test_the_duplicate_index_names_its_first_line_even_far_apart() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import parse_lst

    text = "\n".join([f"{i}\t0\tc/{i}.png" for i in range(5)] + ["", "9\t1\tc/9.png", "3\t1\tc/x.png"])
    with pytest.raises(
        DatasetError, match=r"^x.lst, line 8: index 3 already used on line 4\. Indexes must be unique\.$"
    ):
        parse_lst(text, "x.lst")


def test_a_crlf_says_why_it_matters_for_an_index_and_not_for_a_manifest() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import text_lines

    with pytest.raises(DatasetError) as lst:
        list(text_lines("a\r\nb", "s3://b/d/train_lst/train.lst"))
    assert str(lst.value) == (
        "s3://b/d/train_lst/train.lst, line 1: Windows (CRLF) line ending. The algorithm reads the path with the "
        "'\\r' attached: Convert the file to LF line endings (e.g. dos2unix)."
    )
    with pytest.raises(DatasetError) as manifest:
        list(text_lines("a\r\nb", "s3://b/d/train.manifest"))
    assert str(manifest.value) == (
        "s3://b/d/train.manifest, line 1: Windows (CRLF) line ending. Convert the file to LF line endings (e.g. dos2unix)."
    )


def test_a_duplicate_index_whose_first_use_cannot_be_found_again_says_so() -> None:
    # Without a second read of the file (a streamed index), the first use is "an earlier line".
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import scan_lst, text_lines

    lines = text_lines("3\t0\tc/a.png\n3\t1\tc/b.png", "s3://b/d/x.lst")
    with pytest.raises(DatasetError) as duplicate:
        scan_lst(lines, "s3://b/d/x.lst")
    assert str(duplicate.value) == (
        "s3://b/d/x.lst, line 2: index 3 already used on an earlier line. Indexes must be unique."
    )
