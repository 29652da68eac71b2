"""StartTuning: creates the run's tuning jobs, tagged with the execution that creates them."""

from __future__ import annotations

from constructs import Construct

from pipeline.aws import s3_layout
from pipeline.step_inputs import StartTuningInput
from stacks.findings import KMS_ACTIONS, KMS_GROUP, READ_ACTIONS, READ_GROUP, acknowledge, s3_objects
from stacks.steps.base import Step, StepResources, training_environment


class StartTuning(Step):
    inputs = StartTuningInput
    result = "tuning"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        config = resources.config
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Starts the run's hyperparameter tuning jobs",
            environment=training_environment(resources),
        )
        # Describe + ListTags: on ResourceInUse, whether this execution created the job; Describe
        # also: whether a warm-start parent is finished and how many jobs it launched.
        self.allow_tuning_jobs(
            "CreateTuningJobs",
            "sagemaker:CreateHyperParameterTuningJob",
            "sagemaker:AddTags",
            "sagemaker:DescribeHyperParameterTuningJob",
            "sagemaker:ListTags",
            "sagemaker:StopHyperParameterTuningJob",  # a start that fails halfway stops what it created
        )
        self.allow_passing_the_training_role()
        resources.artifacts.grant_read(self.role, s3_layout.everything_under(s3_layout.RUNS))
        for action in READ_ACTIONS:
            acknowledge(
                self.role,
                f"IAM5[Action::{action}]",
                f"{READ_GROUP} to runs/* (earlier runs' records, for warm start), datasets/* and inputs/* (the copied indexes).",
            )
        acknowledge(
            self.role,
            s3_objects(config.bucket_name("artifacts"), s3_layout.everything_under(s3_layout.RUNS)),
            "Reads runs/<dataset>/latest.json of whichever dataset runs, and lists and reads the records of "
            "similar datasets' runs under runs/_classes/ (warm start from the platform's history).",
        )
        # The indexes and manifests as validated, copied where the training jobs read them.
        inputs = s3_layout.everything_under(s3_layout.INPUTS)
        resources.datasets.grant_read(self.role, s3_layout.everything_under(s3_layout.DATASETS))
        resources.artifacts.grant_put(self.role, inputs)
        resources.artifacts.grant_read(self.role, inputs)  # HeadObject: a retry copies nothing twice
        for action in KMS_ACTIONS:
            acknowledge(self.role, f"IAM5[Action::{action}]", KMS_GROUP + " (the copied indexes).")
        acknowledge(self.role, "IAM5[Action::s3:Abort*]", "CDK's put grant: its own multipart uploads, inputs/* only.")
        acknowledge(
            self.role,
            s3_objects(config.bucket_name("datasets"), s3_layout.everything_under(s3_layout.DATASETS)),
            "Copies the validated version of whichever dataset's indexes, under datasets/ only.",
        )
        acknowledge(
            self.role,
            s3_objects(config.bucket_name("artifacts"), inputs),
            "Writes inputs/<dataset>/<run>/ of whichever dataset runs.",
        )
