"""CheckEvaluation: follows the test split's transform, then scores its answers against the labels."""

from __future__ import annotations

from constructs import Construct

from pipeline.aws import s3_layout
from pipeline.step_inputs import CheckEvaluationInput
from stacks.findings import acknowledge, s3_objects, sagemaker
from stacks.steps.base import Step, StepResources
from stacks.steps.evaluation_grants import EVALUATION_ERROR, allow_transform_jobs, grant_evaluation_data


class CheckEvaluation(Step):
    inputs = CheckEvaluationInput
    result = "tested"
    error_path = EVALUATION_ERROR

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Follows the test evaluation and scores it",
            environment={"ARTIFACTS_BUCKET": resources.artifacts.bucket_name},
            # Scoring reads one answer per test image, 32 at a time: ~50,000 images in about a minute.
            timeout_seconds=300,
            memory_mb=1024,
        )
        allow_transform_jobs(self, "FollowTransform", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob")
        grant_evaluation_data(self, read_evaluation=True)
        # The scores go beside the metrics document, under metrics/ (evaluation/ expires).
        resources.artifacts.grant_put(self.role, s3_layout.everything_under(s3_layout.METRICS))
        acknowledge(
            self.role,
            s3_objects(resources.config.bucket_name("artifacts"), s3_layout.everything_under(s3_layout.METRICS)),
            "Writes metrics/<dataset>/<run>/evaluation.json for whichever dataset runs.",
        )
        # The model served the transform only: deleted when the evaluation ends.
        self.allow("DeleteModel", ["sagemaker:DeleteModel"], [self.arn("model/*")])
        acknowledge(self.role, sagemaker("model/*"), "Model names are derived per run at run time.")
