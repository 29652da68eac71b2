"""Validate the uploaded dataset before any GPU starts; return the run (contract.Run)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.aws import clients
from pipeline.aws.errors import classified_aws_errors
from pipeline.aws.observe import logger, tracer
from pipeline.dataset.listing import LIST_WORKERS
from pipeline.dataset.validation import validate_dataset


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=S3EventBridgeNotificationEvent)
def handler(event: S3EventBridgeNotificationEvent, context: LambdaContext) -> dict[str, Any]:
    defaults = json.loads(os.environ["TUNING_DEFAULTS"])
    with classified_aws_errors():
        # LIST_WORKERS threads share the client; listings' timestamps are never read.
        s3 = clients.client("s3", max_pool_connections=LIST_WORKERS + 2, raw_timestamps=True)
        run = validate_dataset(
            event.raw_event,
            defaults,
            s3,
            os.environ["AWS_REGION"],
            workflow_timeout_seconds=int(os.environ["WORKFLOW_TIMEOUT_SECONDS"]),
            queue_seconds=int(os.environ["MAX_QUEUE_WAIT_SECONDS"]),
        )
    logger.append_keys(run_id=run.run_id)
    out = run.to_dict()
    data = {k: v for k, v in out["data"].items() if k != "channels"}
    logger.info("dataset valid", extra={"dataset": out["dataset"], "data": data, "cost": out["cost"]})
    return out
