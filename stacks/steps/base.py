"""What every step shares: the resources it may be granted, and its function with a role of its own."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.constructs.pipeline_function import PipelineFunction
from stacks.findings import XRAY, acknowledge, sagemaker

TUNING_JOBS = "hyper-parameter-tuning-job/*"
TUNING_JOBS_REASON = "Tuning job names are derived per run (dataset + manifest version) at run time."


@dataclass(frozen=True)
class StepResources:
    config: PipelineConfig
    datasets: s3.IBucket
    artifacts: s3.IBucket
    data_key: kms.IKey
    logs_key: kms.IKey
    log_retention: logs.RetentionDays
    sagemaker_role: iam.IRole
    table: dynamodb.ITable  # the governance table: slots, queue, ledger


def handler_module(step: str) -> str:
    """The handler module of a step: its name in snake case, "ChooseBest" -> "choose_best"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", step).lower()


def training_environment(resources: StepResources) -> dict[str, str]:
    """What a step that hands work to SageMaker needs: the role, the bucket, the key, the VPC."""
    vpc = resources.config.training_vpc
    return {
        "SAGEMAKER_ROLE_ARN": resources.sagemaker_role.role_arn,
        "ARTIFACTS_BUCKET": resources.artifacts.bucket_name,
        "KMS_KEY_ARN": resources.data_key.key_arn,
        **({"TRAINING_VPC": json.dumps(vpc)} if vpc else {}),
    }


class Step(PipelineFunction):
    """A step's Lambda; subclasses add their grants. One name throughout: the class name is the
    workflow state's name and, in snake case, the handler's module (`lambdas/handlers/`)."""

    wildcard_reason = ""  # what else, beyond X-Ray, needs Resource "*" in this step's policy

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resources: StepResources,
        description: str,
        environment: dict[str, str] | None = None,
        **sizing: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            module=handler_module(type(self).__name__),
            description=description,
            environment=environment or {},
            logs_key=resources.logs_key,
            log_retention=resources.log_retention,
            **sizing,
        )
        self.resources = resources
        acknowledge(self.role, "IAM5[Resource::*]", f"{XRAY} ({construct_id}){self.wildcard_reason}.")
        acknowledge(
            self.function,
            "L1",
            "python3.13: the runtime the bundled Powertools 3 supports; the handlers are tested on it.",
        )

    def allow(self, sid: str, actions: Sequence[str], resources: Sequence[str], **conditions: Any) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid=sid, actions=list(actions), resources=list(resources), conditions=conditions or None
            )
        )

    def allow_passing_the_training_role(self) -> None:
        """iam:PassRole for the SageMaker role only, and only to SageMaker; and the data key's grant."""
        self.allow(
            "PassOnlyTheTrainingRole",
            ["iam:PassRole"],
            [self.resources.sagemaker_role.role_arn],
            StringEquals={"iam:PassedToService": "sagemaker.amazonaws.com"},
        )
        self.resources.data_key.grant(self.role, "kms:DescribeKey", "kms:CreateGrant")

    def arn(self, resource: str) -> str:
        """A SageMaker ARN of this account and region, e.g. `training-job/*`."""
        kind, _, name = resource.partition("/")
        return Stack.of(self).format_arn(service="sagemaker", resource=kind, resource_name=name)

    def allow_tuning_jobs(self, sid: str, *actions: str) -> None:
        self.allow(sid, actions, [self.arn(TUNING_JOBS)])
        acknowledge(self.role, sagemaker(TUNING_JOBS), TUNING_JOBS_REASON)


class StepClass(Protocol):
    """What the stack composes: a step built from the shared resources alone."""

    __name__: str

    def __call__(self, scope: Construct, construct_id: str, *, resources: StepResources) -> Step: ...
