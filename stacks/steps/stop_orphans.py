"""StopOrphans: after an abort, a timeout or a failure, stops the tuning jobs that execution started,
gives its slots back and settles its reservation.

Not a state of the workflow: the `ExecutionEnded` rule runs it, because an aborted or timed-out
execution runs no state of its own.
"""

from __future__ import annotations

from constructs import Construct

from stacks.findings import acknowledge, sagemaker
from stacks.steps.base import Step, StepResources
from stacks.steps.evaluation_grants import allow_transform_jobs
from stacks.steps.governance_grants import WAKE_REASON, allow_governing, allow_reaping, allow_settling


class StopOrphans(Step):
    wildcard_reason = (
        "; sagemaker:ListHyperParameterTuningJobs and ListTransformJobs (finding a run's running jobs) have no "
        "resource type either"
        f"; {WAKE_REASON}"
    )

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Stops the tuning jobs of an aborted, timed-out or failed execution",
        )
        # ListTags: stop only the jobs tagged with the execution that ended.
        self.allow_tuning_jobs("StopOwnTuningJobs", "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTags")
        self.allow("FindRunningJobs", ["sagemaker:ListHyperParameterTuningJobs", "sagemaker:ListTransformJobs"], ["*"])
        allow_transform_jobs(self, "StopOwnTransform", "sagemaker:StopTransformJob", "sagemaker:ListTags")
        # The evaluation's model, when the execution that made it ended before deleting it.
        self.allow(
            "DeleteOwnModel",
            ["sagemaker:DescribeModel", "sagemaker:ListTags", "sagemaker:DeleteModel"],
            [self.arn("model/*")],
        )
        acknowledge(self.role, sagemaker("model/*"), "Model names are derived per run at run time.")
        # Then its slots go to the next queued run and its reservation is settled to what it billed.
        allow_governing(self)
        allow_settling(self)
        allow_reaping(self)
