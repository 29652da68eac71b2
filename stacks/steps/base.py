"""What every step shares: the resources it may be granted, its function with a role of its own, and
how it builds its task state (payload, result path, retries, catch) from the run contract."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.aws.errors import TransientAwsError
from pipeline.contract import STATE, path
from pipeline.step_inputs import EXECUTION_FACTS, NESTED
from stacks.config import PipelineConfig
from stacks.constructs.pipeline_function import PipelineFunction
from stacks.findings import XRAY, acknowledge, sagemaker

TUNING_JOBS = "hyper-parameter-tuning-job/*"
# What every task retries, with backoff: throttling and transient errors, ours and Lambda's.
TRANSIENT_ERRORS = [
    TransientAwsError.__name__,
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
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


def payload_of(inputs: type, **constants: Any) -> dict[str, Any]:
    """The task payload that fills the fields of a step's input class (pipeline/step_inputs.py), in
    their order: a key of the workflow state, a field of `run`, a fact of the execution, the task
    token, or one of `constants`; an optional field given none is left out. A required field no
    source fills, or a constant no field takes, fails the synth: the handler would not get it."""
    payload: dict[str, Any] = {}
    fields = dataclasses.fields(inputs)
    unknown = set(constants) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{inputs.__name__} has no field {', '.join(sorted(unknown))}: the task cannot pass it.")
    for field in fields:
        name = field.name
        if name in constants:
            payload[name] = constants[name]
        elif name == "token":
            payload[name] = sfn.JsonPath.task_token
        elif name in EXECUTION_FACTS:
            payload[f"{name}.$"] = EXECUTION_FACTS[name]
        elif name in NESTED:
            payload[f"{name}.$"] = path(*NESTED[name])
        elif name in STATE:
            payload[f"{name}.$"] = path(name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise TypeError(
                f"{inputs.__name__}.{name}: required, and neither a state key, a field of run, a fact of the "
                "execution nor a constant given to the task: add it to contract.STATE or pass it as a constant."
            )
    return payload


class Step(PipelineFunction):
    """A step's Lambda and its task state; subclasses add their grants. One name throughout: the
    class name is the workflow state's name and, in snake case, the handler's module."""

    wildcard_reason = ""  # what else, beyond X-Ray, needs Resource "*" in this step's policy
    inputs: ClassVar[type | None] = None  # its input class (pipeline/step_inputs.py); None: the whole state
    result: ClassVar[str | None] = None  # the state key its result goes to; None: discarded
    error_path: ClassVar[str] = path("error")  # where its task's catch puts the error

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
        self.task_states: list[tasks.LambdaInvoke] = []  # the workflow's states that invoke it
        acknowledge(self.role, "IAM5[Resource::*]", f"{XRAY} ({construct_id}){self.wildcard_reason}.")
        acknowledge(
            self.function,
            "L1",
            "python3.13: the runtime the bundled Powertools 3 supports; the handlers are tested on it.",
        )

    def task(
        self, name: str | None = None, *, on_error: sfn.IChainable | None = None, **constants: Any
    ) -> tasks.LambdaInvoke:
        """This step's task state (named as the step unless `name`): its payload from its input
        class, its result at its state key, the transient errors retried, the rest caught into
        `on_error`."""
        task = tasks.LambdaInvoke(
            self,
            name or type(self).__name__,
            lambda_function=self.function,
            # No input class: the function gets the whole state input (Parameters omitted).
            payload=sfn.TaskInput.from_object(payload_of(self.inputs, **constants)) if self.inputs else None,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path=path(self.result) if self.result else sfn.JsonPath.DISCARD,
        )
        return self.policies(task, on_error)

    def policies(
        self, task: tasks.LambdaInvoke, on_error: sfn.IChainable | None, error_path: str | None = None
    ) -> tasks.LambdaInvoke:
        """Every task's retry of transient errors; then everything else caught into `on_error`."""
        self.task_states.append(task)
        task.add_retry(
            errors=TRANSIENT_ERRORS,
            interval=Duration.seconds(5),
            backoff_rate=2,
            max_attempts=6,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if on_error is not None:
            task.add_catch(on_error, errors=["States.ALL"], result_path=error_path or self.error_path)
        return task

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
