"""Run ids and tuning job names: readable, valid, the same for the same upload."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.tuning.naming import run_id


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@pytest.mark.parametrize(
    ("dataset", "slug"),
    [
        ("Flowers_2024 set!", "flowers-2024-set"),  # lower case, one '-' for each run of others
        ("--abc--", "abc"),  # no leading or trailing '-'
        ("abcdefghijklmno-pq", "abcdefghijklmno"),  # cut to 16, then no trailing '-'
        ("ABCDEFGHIJKLMNOPQRSTU", "abcdefghijklmnop"),  # 32 - 5 (suffix room) - 1 - 10 = 16
        ("___", "ds"),  # nothing usable: a placeholder
    ],
)
def test_run_ids_are_a_readable_slug_and_a_digest_of_the_upload(dataset: str, slug: str) -> None:
    assert run_id("bucket", dataset, "v1") == f"{slug}-{digest(f'bucket/{dataset}@v1')}"
