"""Compose the success notification (the state machine publishes it to SNS)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.aws.observe import logger, tracer
from pipeline.messages import success_message
from pipeline.step_inputs import ComposeSuccessInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    inputs = ComposeSuccessInput.parse(event)
    logger.append_keys(run_id=inputs.run.run_id)
    notice = success_message(
        inputs.run,
        inputs.best,
        inputs.registered,
        os.environ["AWS_REGION"],
        inputs.tested,
        inputs.admission,
        inputs.tuning,
    )
    return dataclasses.asdict(notice)
