"""The one seam through which every handler gets its AWS clients.

Clients are created on first use, never at import, so moto and local mode can point them
elsewhere: local mode sets `AWS_ENDPOINT_URL_SAGEMAKER`, which botocore itself reads.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling and 5xx inside each call; Step Functions retries
# the whole task on top of that.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})


def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)
