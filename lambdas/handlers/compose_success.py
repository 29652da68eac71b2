"""Compose the success notification (the state machine publishes it to SNS)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.messages import success_message
from pipeline.telemetry import SERVICE

logger = Logger(service=SERVICE)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    logger.append_keys(run_id=event["run"]["run_id"])
    return success_message(event["run"], event["best"], event["registered"], os.environ["AWS_REGION"])
