"""StartEvaluation: a SageMaker model of the best training job and a batch transform of the test split."""

from __future__ import annotations

from constructs import Construct

from pipeline.step_inputs import StartEvaluationInput
from stacks.findings import acknowledge, sagemaker
from stacks.steps.base import Step, StepResources, training_environment
from stacks.steps.evaluation_grants import EVALUATION_ERROR, allow_transform_jobs, grant_evaluation_data


class StartEvaluation(Step):
    inputs = StartEvaluationInput
    result = "evaluation"
    error_path = EVALUATION_ERROR

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Starts the held-out test evaluation of the best model",
            environment=training_environment(resources),
            timeout_seconds=120,
        )
        # DeleteModel: when the transform cannot be created, its model is not left behind.
        self.allow(
            "CreateModel",
            ["sagemaker:CreateModel", "sagemaker:AddTags", "sagemaker:DeleteModel"],
            [self.arn("model/*")],
        )
        acknowledge(self.role, sagemaker("model/*"), "Model names are derived per run at run time.")
        # Describe + ListTags: on ResourceInUse, whether this execution started the transform.
        allow_transform_jobs(
            self,
            "StartTransform",
            "sagemaker:CreateTransformJob",
            "sagemaker:AddTags",
            "sagemaker:DescribeTransformJob",
            "sagemaker:ListTags",
        )
        self.allow_passing_the_training_role()
        grant_evaluation_data(self, read_evaluation=False)
