"""ChooseBest: the best training job across the run's tuning jobs, its artifact, and the bill."""

from __future__ import annotations

from constructs import Construct

from pipeline.step_inputs import ChooseBestInput
from stacks.findings import acknowledge, sagemaker
from stacks.steps.base import Step, StepResources


class ChooseBest(Step):
    inputs = ChooseBestInput
    result = "best"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Chooses the best training job of the run",
        )
        self.allow_tuning_jobs("DescribeTuningJobs", "sagemaker:DescribeHyperParameterTuningJob")
        self.allow("DescribeTrainingJobs", ["sagemaker:DescribeTrainingJob"], [self.arn("training-job/*")])
        self.allow_tuning_jobs("ListTrainingJobsForBilling", "sagemaker:ListTrainingJobsForHyperParameterTuningJob")
        acknowledge(
            self.role,
            sagemaker("training-job/*"),
            "Training job names are chosen by SageMaker per tuning job at run time.",
        )
