"""ValidateDataset: reads the uploaded dataset (never writes) and refuses it before any GPU starts."""

from __future__ import annotations

import json

from constructs import Construct

from pipeline.aws import s3_layout
from stacks.findings import READ_ACTIONS, READ_GROUP, acknowledge, s3_objects
from stacks.steps.base import Step, StepResources


class ValidateDataset(Step):
    result = "run"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        config = resources.config
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Validates an uploaded dataset before any GPU starts",
            environment={
                "TUNING_DEFAULTS": json.dumps(config.tuning.to_dict(), separators=(",", ":")),
                # The state machine's timeout: validation refuses runs that could outlive it.
                "WORKFLOW_TIMEOUT_SECONDS": str(config.workflow_timeout_seconds),
                "MAX_QUEUE_WAIT_SECONDS": str(config.governance.max_queue_wait_seconds),
            },
            # Sized from `make bench-scale` (bench/results/scale.md): an ImageNet-size dataset
            # (1.28M training images) validates in ~35 s, CPU-bound (botocore parsing 1,357
            # pages, the .lst scan), with a ~310 MB peak: within half of both. 2,048 MB buys
            # more than one vCPU (Lambda gives one at 1,769 MB).
            timeout_seconds=180,
            memory_mb=2048,
        )
        resources.datasets.grant_read(self.role, s3_layout.everything_under(s3_layout.DATASETS))
        for action in READ_ACTIONS:
            acknowledge(
                self.role,
                f"IAM5[Action::{action}]",
                f"{READ_GROUP} to datasets/*: validation reads the manifest, .lst files and listings.",
            )
        acknowledge(
            self.role,
            s3_objects(config.bucket_name("datasets"), s3_layout.everything_under(s3_layout.DATASETS)),
            "Validation reads whichever dataset was uploaded, under datasets/ only.",
        )
