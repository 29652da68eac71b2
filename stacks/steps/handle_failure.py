"""HandleFailure: stops the tuning jobs this execution started, then composes the failure notice."""

from __future__ import annotations

from constructs import Construct

from stacks.findings import acknowledge, sagemaker
from stacks.steps.base import Step, StepResources
from stacks.steps.evaluation_grants import allow_transform_jobs


class HandleFailure(Step):
    result = "notification"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Stops running tuning jobs and composes the failure notification",
        )
        self.allow_tuning_jobs(
            "StopTuningJobs", "sagemaker:DescribeHyperParameterTuningJob", "sagemaker:StopHyperParameterTuningJob"
        )
        allow_transform_jobs(self, "StopTransform", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob")
        self.allow("DeleteModel", ["sagemaker:DeleteModel"], [self.arn("model/*")])
        acknowledge(self.role, sagemaker("model/*"), "Model names are derived per run at run time.")
