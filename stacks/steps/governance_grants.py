"""Grants of the steps that govern runs together: the governance table, waking a queued run, and
(for those that settle the ledger) reading what a run billed; each with its acknowledgment."""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Stack

from stacks.findings import acknowledge, sagemaker
from stacks.steps.base import Step, StepResources
from stacks.steps.evaluation_grants import allow_transform_jobs

# SendTaskSuccess takes the task token, not an ARN: the Service Authorization Reference lists no
# resource type for it ("*" only; aws/aws-cdk discussion #26401 on grantTaskResponse).
WAKE_REASON = "states:SendTaskSuccess (waking a queued run by its task token) supports no resource-level permissions"


def governance_environment(resources: StepResources) -> dict[str, str]:
    governance = resources.config.governance
    return {
        "GOVERNANCE_TABLE": resources.config.table_name,
        "CAPACITY": json.dumps(governance.capacity, separators=(",", ":"), sort_keys=True),
        "MONTHLY_BUDGET_USD": "" if governance.monthly_budget_usd is None else str(governance.monthly_budget_usd),
    }


def allow_governing(step: Step) -> None:
    """The table (its item reads and writes only) and SendTaskSuccess, to send the next queued run on."""
    resources = step.resources
    for key, value in governance_environment(resources).items():
        step.function.add_environment(key, value)
    resources.table.grant(
        step.role,
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    )
    resources.data_key.grant(step.role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
    step.allow("WakeQueuedRuns", ["states:SendTaskSuccess"], ["*"])


def allow_reaping(step: Step) -> None:
    """Whether an execution that holds slots still runs: the executions of this state machine only."""
    config = step.resources.config
    executions = Stack.of(step).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{config.state_machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    step.allow("AskWhetherRunsStillRun", ["states:DescribeExecution"], [executions])
    acknowledge(
        step.role,
        f"IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{config.state_machine_name}:*]",
        "The executions of this deployment's state machine only: a ticket names the execution that holds it.",
    )


def allow_settling(step: Step) -> None:
    """What settling a run's reservation reads: what its jobs billed."""
    step.allow("FindRunTuningJobs", ["sagemaker:ListHyperParameterTuningJobs"], ["*"])
    step.allow_tuning_jobs(
        "ReadRunTuningJobs", "sagemaker:ListTags", "sagemaker:ListTrainingJobsForHyperParameterTuningJob"
    )
    step.allow("ReadBilledSeconds", ["sagemaker:DescribeTrainingJob"], [step.arn("training-job/*")])
    acknowledge(step.role, sagemaker("training-job/*"), "Training job names are chosen by SageMaker at run time.")
    allow_transform_jobs(step, "ReadTransformTime", "sagemaker:DescribeTransformJob", "sagemaker:ListTags")
