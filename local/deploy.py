"""Local mode's deploy: the synthesized templates' resources created in the local services, under
the names and with the environments CloudFormation would give them (tokens resolved to local
ARNs): buckets, the governance table, the topic (read through an SQS subscription), the
functions, the state machine, the rules and the model package group."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local.assembly import load_template, pseudo_parameters, resolve, resources_of_type, state_machine_definitions
from local.lambda_runtime import patched_env

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Rule:
    name: str
    pattern: dict[str, Any] | None  # None: a scheduled rule
    targets: list[str]  # ARNs: state machines or Lambda functions
    schedule: str = ""


def governance_table(db: Any, name: str) -> None:
    """A table of the governance table's keys (pk, sk: stacks/storage_stack.py), for tests and benchmarks
    that need the table without a synthesized app; the harness creates the real one from the template."""
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class Deployed:
    datasets_bucket: str
    artifacts_bucket: str
    topic_arn: str
    queue_url: str
    state_machine_arn: str
    rules: list[Rule]
    model_package_group: str
    table: str  # the governance table

    @property
    def rule_pattern(self) -> dict[str, Any]:
        """The pattern of the rule that starts runs (the one targeting the state machine)."""
        return next(r.pattern for r in self.rules if self.state_machine_arn in r.targets and r.pattern is not None)


def resolver_for(templates: dict[str, dict[str, Any]]) -> Callable[[str, str | None], str]:
    types = {lid: r["Type"] for t in templates.values() for lid, r in t["Resources"].items()}
    # Resources named in the template go by that name.
    names = {
        lid: r["Properties"].get({"AWS::DynamoDB::Table": "TableName"}.get(r["Type"], "StateMachineName"), lid)
        for t in templates.values()
        for lid, r in t["Resources"].items()
        if r["Type"] in ("AWS::DynamoDB::Table", "AWS::StepFunctions::StateMachine")
    }

    def resolver(name: str, attribute: str | None) -> str:
        pseudo = pseudo_parameters(ACCOUNT, REGION)
        if name in pseudo:
            return pseudo[name]
        if name.startswith("Import:"):
            if "DataKey" in name:
                return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
            raise KeyError(f"local mode cannot resolve export {name}")
        kind = types.get(name, "")
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{names[name]}"
        if kind == "AWS::S3::Bucket":
            return name
        if kind == "AWS::DynamoDB::Table":
            return str(names[name])
        raise KeyError(f"local mode cannot resolve {name} ({kind or 'unknown'}).{attribute}")

    return resolver


def deploy(cdk_out: Path, stack_prefix: str, exit_stack: contextlib.ExitStack) -> Deployed:
    storage = load_template(cdk_out, f"{stack_prefix}-storage")
    pipeline = load_template(cdk_out, f"{stack_prefix}-pipeline")
    resolver = resolver_for({"storage": storage, "pipeline": pipeline})
    s3, sns, sqs, lam, sfn = (
        boto3.client(s, region_name=REGION) for s in ("s3", "sns", "sqs", "lambda", "stepfunctions")
    )

    buckets = {}
    for logical_id, bucket in resources_of_type(storage, "AWS::S3::Bucket").items():
        name = resolve(bucket["Properties"].get("BucketName", logical_id.lower()), resolver)
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        # Named <prefix>-<env>-<kind>-<account>-<region> (stacks/config.py).
        kind = next((k for k in ("datasets", "artifacts") if f"-{k}-{ACCOUNT}-" in name), logical_id)
        buckets[kind] = name

    db = boto3.client("dynamodb", region_name=REGION)
    (table,) = resources_of_type(storage, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    table_name = resolve(props["TableName"], resolver)
    db.create_table(
        TableName=table_name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
    )

    (topic_id,) = resources_of_type(pipeline, "AWS::SNS::Topic")
    topic_arn = sns.create_topic(Name=topic_id)["TopicArn"]
    queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    environment: dict[str, str] = {"AWS_LAMBDA_FUNCTION_NAME": ""}
    for logical_id, function in resources_of_type(pipeline, "AWS::Lambda::Function").items():
        for key, value in resolve(function["Properties"].get("Environment", {}).get("Variables", {}), resolver).items():
            if environment.setdefault(key, value) != value:
                raise ValueError(f"local mode needs one value per environment variable; {key} differs in {logical_id}")
    exit_stack.enter_context(patched_env(environment))
    iam_role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="local-lambda", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    for logical_id, function in resources_of_type(pipeline, "AWS::Lambda::Function").items():
        props = function["Properties"]
        lam.create_function(
            FunctionName=logical_id,
            Runtime=props["Runtime"],
            Role=iam_role,
            Handler=props["Handler"],
            Code={"ZipFile": b"local mode runs the handler from lambdas/ in-process"},
            Environment={"Variables": resolve(props.get("Environment", {}).get("Variables", {}), resolver)},
            Timeout=props.get("Timeout", 60),
            MemorySize=props.get("MemorySize", 512),
        )

    ((machine_id, definition),) = state_machine_definitions(pipeline, resolver).items()
    machine_name = resources_of_type(pipeline, "AWS::StepFunctions::StateMachine")[machine_id]["Properties"].get(
        "StateMachineName", machine_id
    )
    machine_arn = sfn.create_state_machine(
        name=machine_name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/local-states"
    )["stateMachineArn"]

    rules = [
        Rule(
            name=logical_id,
            pattern=resolve(rule["Properties"]["EventPattern"], resolver)
            if "EventPattern" in rule["Properties"]
            else None,
            targets=[resolve(t["Arn"], resolver) for t in rule["Properties"]["Targets"]],
            schedule=rule["Properties"].get("ScheduleExpression", ""),
        )
        for logical_id, rule in resources_of_type(pipeline, "AWS::Events::Rule").items()
    ]

    (group,) = resources_of_type(pipeline, "AWS::SageMaker::ModelPackageGroup").values()
    group_name = group["Properties"]["ModelPackageGroupName"]
    boto3.client("sagemaker", region_name=REGION).create_model_package_group(ModelPackageGroupName=group_name)

    return Deployed(
        datasets_bucket=buckets["datasets"],
        artifacts_bucket=buckets["artifacts"],
        topic_arn=topic_arn,
        queue_url=queue_url,
        state_machine_arn=machine_arn,
        rules=rules,
        model_package_group=group_name,
        table=table_name,
    )
