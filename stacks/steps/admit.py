"""Admit: reserves the run's worst case in the month's ledger and leases its slots, or queues it.

The workflow runs it twice with a task token: before StartTuning (the training instances) and
before StartEvaluation (the transform's instance).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.contract import path
from pipeline.step_inputs import AdmitInput
from stacks.steps.base import Step, StepResources, payload_of
from stacks.steps.governance_grants import WAKE_REASON, allow_governing


class Admit(Step):
    inputs = AdmitInput

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

    def admission(
        self,
        name: str,
        phase: str,
        queue_timeout: Duration,
        *,
        on_timeout: sfn.IChainable | None = None,
        on_error: sfn.IChainable,
        error_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        """The task that admits the run for `phase`: it goes on when its task token is sent, with its
        lease at `admission.<phase>`, or times out (States.Timeout) after max_queue_wait_seconds."""
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(payload_of(AdmitInput, phase=phase)),
            task_timeout=sfn.Timeout.duration(queue_timeout),
            retry_on_service_exceptions=False,
            result_path=path("admission", phase),
        )
        if on_timeout is not None:
            task.add_catch(on_timeout, errors=["States.Timeout"], result_path=path("error"))
        return self.policies(task, on_error, error_path)
