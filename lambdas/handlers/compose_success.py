"""Compose the success notification (the state machine publishes it to SNS)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.admission import Admissions
from pipeline.contract import BestJob, Registered, Run, Tested
from pipeline.messages import success_message
from pipeline.observe import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    run = Run.from_dict(event["run"])
    logger.append_keys(run_id=run.run_id)
    tested = Tested.from_dict(event["tested"]) if event.get("tested") else None
    admission = Admissions.from_dict(event["admission"]) if event.get("admission") else None
    notice = success_message(
        run,
        BestJob.from_dict(event["best"]),
        Registered(**event["registered"]),
        os.environ["AWS_REGION"],
        tested,
        admission,
    )
    return dataclasses.asdict(notice)
