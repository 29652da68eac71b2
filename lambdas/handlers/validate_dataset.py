"""Validate the uploaded dataset before any GPU starts; return the run descriptor."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients
from pipeline.errors import classified_aws_errors
from pipeline.telemetry import SERVICE
from pipeline.validation import LIST_WORKERS, validate_dataset

logger = Logger(service=SERVICE)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    defaults = json.loads(os.environ["TUNING_DEFAULTS"])
    with classified_aws_errors():
        # LIST_WORKERS threads share the client; listings' timestamps are never read.
        s3 = clients.client("s3", max_pool_connections=LIST_WORKERS + 2, raw_timestamps=True)
        run = validate_dataset(
            event,
            defaults,
            s3,
            os.environ["AWS_REGION"],
            workflow_timeout_seconds=int(os.environ["WORKFLOW_TIMEOUT_SECONDS"]),
        )
    logger.append_keys(run_id=run["run_id"])
    logger.info(
        "dataset valid",
        extra={
            "dataset": run["dataset"],
            "data": {k: v for k, v in run["data"].items() if k != "channels"},
            "cost": run["cost"],
        },
    )
    return run
