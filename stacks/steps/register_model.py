"""RegisterModel: the best job as a new version of the model package group, with its metrics."""

from __future__ import annotations

from constructs import Construct

from pipeline.aws import s3_layout
from pipeline.step_inputs import RegisterModelInput
from stacks.findings import KMS_ACTIONS, KMS_GROUP, acknowledge, s3_objects, sagemaker
from stacks.steps.base import Step, StepResources


class RegisterModel(Step):
    inputs = RegisterModelInput
    result = "registered"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        config, artifacts = resources.config, resources.artifacts
        group = config.model_package_group
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Registers the best model in the SageMaker Model Registry",
            environment={"MODEL_PACKAGE_GROUP": group, "ARTIFACTS_BUCKET": artifacts.bucket_name},
        )
        packages = self.arn(f"model-package/{group}/*")
        self.allow(
            "RegisterModelPackage",
            ["sagemaker:CreateModelPackage", "sagemaker:ListModelPackages"],
            [self.arn(f"model-package-group/{group}"), packages],
        )
        self.allow("ReadApprovedPackage", ["sagemaker:DescribeModelPackage"], [packages])
        artifacts.grant_put(self.role, s3_layout.everything_under(s3_layout.METRICS))
        artifacts.grant_put(self.role, s3_layout.everything_under(s3_layout.RUNS))
        acknowledge(
            self.role,
            sagemaker(f"model-package/{group}/*"),
            "Versions of this pipeline's one model package group; their numbers are assigned by SageMaker.",
        )
        for action in KMS_ACTIONS:
            acknowledge(self.role, f"IAM5[Action::{action}]", KMS_GROUP + " (metrics documents).")
        acknowledge(
            self.role,
            "IAM5[Action::s3:Abort*]",
            "CDK's put grant includes aborting its own multipart uploads; scoped to metrics/* and runs/*.",
        )
        name = config.bucket_name("artifacts")
        acknowledge(
            self.role,
            s3_objects(name, s3_layout.everything_under(s3_layout.METRICS)),
            "Writes metrics/<dataset>/<run>/metrics.json for whichever dataset runs.",
        )
        acknowledge(
            self.role,
            s3_objects(name, s3_layout.everything_under(s3_layout.RUNS)),
            "Writes runs/<dataset>/latest.json for whichever dataset runs, and its copy under runs/_classes/.",
        )
