"""Admit: reserves the run's worst case in the month's ledger and leases its slots, or queues it.

The workflow runs it twice with a task token: before StartTuning (the training instances) and
before StartEvaluation (the transform's instance).
"""

from __future__ import annotations

from constructs import Construct

from stacks.steps.base import Step, StepResources
from stacks.steps.governance_grants import WAKE_REASON, allow_governing


class Admit(Step):
    wildcard_reason = (
        f"; {WAKE_REASON}; servicequotas:ListServiceQuotas (reading the account's applied quota) has none either"
    )

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Reserves the run's budget and leases its instance slots, or queues the run",
        )
        allow_governing(self)
        self.allow("ReadAppliedQuotas", ["servicequotas:ListServiceQuotas"], ["*"])
