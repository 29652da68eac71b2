"""The one seam through which every handler gets its AWS clients.

Clients are created on first use, never at import, so moto and local mode can point them
elsewhere: local mode sets `AWS_ENDPOINT_URL_SAGEMAKER`, which botocore itself reads.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.config import Config

# Standard retry mode backs off on throttling and 5xx inside each call; Step Functions retries
# the whole task on top of that.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})


def _as_text(value: str) -> str:
    return value


def client(service: str, *, max_pool_connections: int | None = None, raw_timestamps: bool = False) -> Any:
    """A client for `service`.

    `max_pool_connections`: at least the number of threads sharing the client (botocore's
    default is 10). `raw_timestamps`: keep timestamps as the text AWS sent; turning the
    `LastModified` of a 1,000-key ListObjectsV2 page into datetimes is most of the CPU botocore
    spends on the page, wasted by code that never reads them (bench/scale.py measures both)."""
    config = _CONFIG
    if max_pool_connections is not None:
        config = config.merge(Config(max_pool_connections=max_pool_connections))
    if not raw_timestamps:
        return boto3.client(service, config=config)
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_text)
    return boto3.Session(botocore_session=session).client(service, config=config)
