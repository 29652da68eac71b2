"""The image-classification training image for a region, from the one registry table."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.loaders

_REGISTRIES = Path(__file__).parents[1] / "data" / "image-classification-registries.json"


@cache
def _table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(_REGISTRIES.read_text())
    return table


@cache
def _partitions() -> list[dict[str, Any]]:
    partitions: list[dict[str, Any]] = botocore.loaders.Loader().load_data("endpoints")["partitions"]
    return partitions


def dns_suffix(region: str) -> str:
    """The partition's DNS suffix (amazonaws.com, amazonaws.com.cn, ...) from botocore's data."""
    partitions = _partitions()
    for partition in partitions:
        if region in partition["regions"]:
            return str(partition["dnsSuffix"])
    for partition in partitions:
        if re.match(partition["regionRegex"], region):
            return str(partition["dnsSuffix"])
    raise ValueError(f"region {region!r} belongs to no known AWS partition")


def supported_regions() -> list[str]:
    return sorted(_table()["registries"])


def training_image_uri(region: str) -> str:
    table = _table()
    account = table["registries"].get(region)
    if account is None:
        raise ValueError(
            f"the image-classification algorithm has no registry in region {region!r}; "
            f"supported regions: {', '.join(supported_regions())}"
        )
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/{table['repository']}:{table['tag']}"
