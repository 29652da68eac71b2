"""The training image for every region of the registry table (which lives once in the project)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.aws.image_uri import dns_suffix, supported_regions, training_image_uri

TABLE = json.loads(
    (Path(__file__).parents[1] / "lambdas/pipeline/data/image-classification-registries.json").read_text()
)


@pytest.mark.parametrize("region", sorted(TABLE["registries"]))
def test_every_region_gets_its_own_account_and_partition_domain(region: str) -> None:
    uri = training_image_uri(region)
    account = TABLE["registries"][region]
    suffix = {
        "cn-": "amazonaws.com.cn",
        "us-iso-": "c2s.ic.gov",
        "us-isob-": "sc2s.sgov.gov",
        "us-isof-": "csp.hci.ic.gov",
    }
    expected = next((v for k, v in suffix.items() if region.startswith(k)), "amazonaws.com")
    assert uri == f"{account}.dkr.ecr.{region}.{expected}/image-classification:1"
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.[a-z0-9.]+/image-classification:1", uri)


def test_known_uris() -> None:
    assert training_image_uri("us-east-1") == "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
    assert training_image_uri("cn-north-1") == "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/image-classification:1"


def test_an_unsupported_region_is_named_with_the_supported_ones() -> None:
    assert len(supported_regions()) == len(TABLE["registries"])
    with pytest.raises(ValueError, match="no registry in region 'mars-north-1'; supported regions: af-south-1"):
        training_image_uri("mars-north-1")


@pytest.mark.parametrize(
    ("region", "suffix"),
    [("cn-future-9", "amazonaws.com.cn"), ("eu-future-9", "amazonaws.com"), ("us-gov-west-1", "amazonaws.com")],
)
def test_a_region_botocore_does_not_list_yet_gets_its_partitions_domain(region: str, suffix: str) -> None:
    assert dns_suffix(region) == suffix


def test_a_region_of_no_partition_is_named() -> None:
    with pytest.raises(ValueError, match="region 'zz-moon-1' belongs to no known AWS partition"):
        dns_suffix("zz-moon-1")
