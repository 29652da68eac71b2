"""The one seam through which every handler gets its AWS clients.

Clients are created on first use, never at import, so moto and local mode can point them
elsewhere: local mode sets `AWS_ENDPOINT_URL_SAGEMAKER` (read by botocore itself) or installs a
factory with `set_factory`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling and 5xx inside each call; Step Functions retries
# the whole task on top of that.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})
_factory: Callable[[str], Any] | None = None


def client(service: str) -> Any:
    if _factory is not None:
        return _factory(service)
    return boto3.client(service, config=_CONFIG)


def set_factory(factory: Callable[[str], Any] | None) -> None:
    """Route every client through `factory` (None restores boto3)."""
    global _factory
    _factory = factory
