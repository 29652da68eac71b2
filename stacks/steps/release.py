"""Release: gives a run's slots back, settles its reservation, sends the next queued runs on.

Run by the workflow (after the tuning, and when the run ends either way) and, every few minutes,
by the reaper rule, which frees what executions that no longer run still hold.
"""

from __future__ import annotations

from constructs import Construct

from pipeline.step_inputs import ReleaseInput
from stacks.steps.base import Step, StepResources
from stacks.steps.governance_grants import WAKE_REASON, allow_governing, allow_settling


class Release(Step):
    inputs = ReleaseInput
    error_path = "$.release_error"

    wildcard_reason = f"; {WAKE_REASON}; sagemaker:ListHyperParameterTuningJobs has no resource type either"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Gives a run's instance slots back, settles its spend, admits the next queued runs",
        )
        allow_governing(self)
        allow_settling(self)
