"""ComposeSuccess: the success notification's text (the state machine publishes it); no AWS access."""

from __future__ import annotations

from constructs import Construct

from pipeline.step_inputs import ComposeSuccessInput
from stacks.steps.base import Step, StepResources


class ComposeSuccess(Step):
    inputs = ComposeSuccessInput
    result = "notification"

    def __init__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> None:
        super().__init__(
            scope,
            construct_id,
            resources=resources,
            description="Composes the success notification",
        )
