"""Listing a prefix of S3 fast: cut at folder boundaries, the stretches listed side by side.

Every object is kept, 0-byte ones too: an empty file is something the uploader sent, and
validation decides what it means (ListObjectsV2 gives each object's Size and ETag)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple


class Listed(NamedTuple):
    """One listed object: its size in bytes and its ETag (quotes removed).

    The ETag is the MD5 of the content only for single-part uploads stored unencrypted or with
    SSE-S3; a multipart upload's ends in `-<parts>` (S3 API reference, Object.ETag)."""

    size: int
    etag: str


def is_folder_marker(key: str) -> bool:
    """The 0-byte object the S3 console writes for "Create folder": a relative key ending in '/',
    or "" for the listed prefix's own marker. It says a folder exists; it is no file."""
    return key == "" or key.endswith("/")


def _listed(obj: dict[str, Any]) -> Listed:
    return Listed(int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))


# Stretches of a channel listed at once. S3 serves 1,000 keys per LIST and a call takes tens of
# milliseconds from Lambda: one after another, 1.28M images take ~1,300 calls and ~100 s.
LIST_WORKERS = 32


def _stretch(s3: Any, bucket: str, prefix: str, first: str, stop: str | None) -> dict[str, Listed]:
    """Relative key -> the objects under prefix from folder `first` up to folder `stop`."""
    found: dict[str, Listed] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=first.rstrip("/"))
    for page in pages:
        for obj in page.get("Contents", []):
            if stop is not None and obj["Key"] >= stop:
                return found
            found[obj["Key"][len(prefix) :]] = _listed(obj)
    return found


def list_channel(s3: Any, bucket: str, prefix: str) -> dict[str, Listed]:
    """Relative key -> size and ETag of every object under prefix (0-byte ones and the console's
    folder markers included; the prefix's own marker is under the key "").

    One listing with a delimiter finds the folders (classes); the key space is then cut at
    folder boundaries into up to LIST_WORKERS stretches listed side by side with StartAfter,
    so the calls stay ~1 per 1,000 keys (plus one per stretch) and run concurrently."""
    found, folders = _delimited(s3, bucket, prefix)
    if 0 < len(folders) < LIST_WORKERS:
        # Few folders (a dataset's splits, Ground Truth's one images/ folder): cut one level
        # deeper too, from one page of each, so the stretches still run side by side.
        with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
            deeper = pool.map(lambda folder: _delimited(s3, bucket, folder, pages=1)[1], folders)
            folders = sorted({*folders, *(sub for subs in deeper for sub in subs)})
    stretches = min(LIST_WORKERS, len(folders))
    starts = [folders[len(folders) * i // stretches] for i in range(stretches)]
    bounds = list(zip(starts, [*starts[1:], None], strict=False))
    with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:  # boto3 clients are thread-safe
        for keys in pool.map(lambda b: _stretch(s3, bucket, prefix, b[0], b[1]), bounds):
            found.update(keys)
    return found


def _delimited(s3: Any, bucket: str, prefix: str, pages: int | None = None) -> tuple[dict[str, Listed], list[str]]:
    """(relative key -> the objects directly under prefix, its folders), from up to `pages` pages."""
    found: dict[str, Listed] = {}
    folders: list[str] = []
    config = {"MaxItems": pages * 1000} if pages else {}
    listing = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/", PaginationConfig=config
    )
    for page in listing:
        found.update((o["Key"][len(prefix) :], _listed(o)) for o in page.get("Contents", []))
        folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found, folders
