"""PollTuning: reports the run's tuning jobs' state in a few fields."""

from __future__ import annotations

from constructs import Construct

from pipeline.step_inputs import PollTuningInput
from stacks.steps.base import Step, StepResources


class PollTuning(Step):
    inputs = PollTuningInput
    result = "poll"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Reports the run's tuning jobs' status",
        )
        self.allow_tuning_jobs("DescribeTuningJobs", "sagemaker:DescribeHyperParameterTuningJob")
