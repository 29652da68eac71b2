"""Local mode: the synthesized app on one machine.

- moto provides S3, SNS, SQS, Lambda and Step Functions; its Step Functions engine executes
  the state machine definition CDK synthesized, with tokens resolved to local ARNs;
- its Lambda service runs each function's real handler in-process, with the function's own
  synthesized environment, so the handlers' boto3 calls reach the local services;
- the trigger is decided by the synthesized EventBridge rule's pattern, evaluated against the
  S3 "Object Created" event of the uploaded manifest;
- SageMaker is `local.sagemaker`, served over HTTP with the real JSON protocol, with the local
  account's quotas (set here, `quotas=`), which it also serves as Service Quotas;
- DynamoDB is moto's: the synthesized governance table, created under its synthesized name;
- a scheduled rule runs when the test says so (`tick()`): time in local mode is the test's.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.events.models import EventPattern
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local.assembly import load_template, pseudo_parameters, resolve, resources_of_type, state_machine_definitions
from local.sagemaker.quotas import AccountQuotas
from local.sagemaker.server import SageMakerServer
from local.sagemaker.service import LocalSageMaker

ACCOUNT = "123456789012"
REGION = "us-east-1"
_INVOKE_LOCK = threading.Lock()


class _LogSink:
    """Where the handlers' log lines go (CloudWatch Logs' stand-in): a file, not the console.

    Powertools binds its stream once, at import: this object stays, its target changes."""

    def __init__(self) -> None:
        self.target: Any = None

    def write(self, text: str) -> int:
        if self.target is not None and not self.target.closed:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        if self.target is not None and not self.target.closed:
            self.target.flush()


LAMBDA_LOGS = _LogSink()


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _run_handler(function: Any, payload: bytes | str | None) -> tuple[bytes, bool]:
    """Invoke the function's real handler in-process.

    The functions' synthesized environments were merged into os.environ at deploy (they agree
    on every shared key, which deploy checks): os.environ is never resized while other threads
    read it, which would break them."""
    event = json.loads(payload) if payload else {}
    module_name, _, attribute = function.handler.rpartition(".")
    with _INVOKE_LOCK:
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.function_name
        try:
            with contextlib.redirect_stdout(LAMBDA_LOGS):  # type: ignore[type-var]
                handler = getattr(importlib.import_module(module_name), attribute)
                context = LambdaContext(function.function_name, invoked_function_arn=function.function_arn)
                return json.dumps(handler(event, context)).encode(), False
        except Exception as exc:  # Lambda reports it as a function error named after the class
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return json.dumps(error).encode(), True


def _invoke(
    self: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    function = self.get_function(function_name, qualifier)
    payload, errored = _run_handler(function, body)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


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


class LocalPipeline:
    """Context manager: local services up, the synthesized app deployed into them."""

    def __init__(
        self,
        cdk_out: Path,
        stack_prefix: str,
        *,
        seed: int = 0,
        lambda_log: Path | None = None,
        quotas: dict[str, int] | None = None,
    ) -> None:
        """`quotas`: the local account's applied SageMaker quotas by name, e.g.
        {"ml.g4dn.xlarge for training job usage": 2}; a name not given is not limited."""
        self.cdk_out = cdk_out
        self.quotas = AccountQuotas(quotas)
        self.lambda_log = lambda_log or cdk_out.parent / "lambda-logs.jsonl"
        self.stack_prefix = stack_prefix
        self.seed = seed
        self._exit = contextlib.ExitStack()
        self._announced: set[str] = set()
        self.target_results: list[tuple[str, Any]] = []
        self.sagemaker_service: LocalSageMaker
        self.deployed: Deployed

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalPipeline:
        env = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_ALLOW_NONEXISTENT_REGION": "true",
        }
        self._exit.enter_context(_patched_env(env))
        log_file = self._exit.enter_context(self.lambda_log.open("a"))
        LAMBDA_LOGS.target = log_file
        self._exit.callback(setattr, LAMBDA_LOGS, "target", None)
        self._exit.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        original = LambdaSimpleBackend.invoke
        LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign,assignment]
        self._exit.callback(setattr, LambdaSimpleBackend, "invoke", original)
        self.sagemaker_service = LocalSageMaker(
            s3_client=lambda: boto3.client("s3", region_name=REGION), seed=self.seed, quotas=self.quotas
        )
        server = self._exit.enter_context(SageMakerServer(self.sagemaker_service))
        self._exit.enter_context(
            _patched_env(
                {"AWS_ENDPOINT_URL_SAGEMAKER": server.endpoint, "AWS_ENDPOINT_URL_SERVICE_QUOTAS": server.endpoint}
            )
        )
        self.deployed = self._deploy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sagemaker_service.shutdown(timeout=60)
        self._exit.close()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    # ------------------------------------------------------------------ deploy

    def _resolver(self, templates: dict[str, dict[str, Any]]) -> Callable[[str, str | None], str]:
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

    def _deploy(self) -> Deployed:
        storage = load_template(self.cdk_out, f"{self.stack_prefix}-storage")
        pipeline = load_template(self.cdk_out, f"{self.stack_prefix}-pipeline")
        resolver = self._resolver({"storage": storage, "pipeline": pipeline})
        s3, sns, sqs, lam, sfn = (self.client(s) for s in ("s3", "sns", "sqs", "lambda", "stepfunctions"))

        buckets = {}
        for logical_id, bucket in resources_of_type(storage, "AWS::S3::Bucket").items():
            name = resolve(bucket["Properties"].get("BucketName", logical_id.lower()), resolver)
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            # Named <prefix>-<env>-<kind>-<account>-<region> (stacks/config.py).
            kind = next((k for k in ("datasets", "artifacts") if f"-{k}-{ACCOUNT}-" in name), logical_id)
            buckets[kind] = name

        db = self.client("dynamodb")
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
        sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"}
        )

        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        environment: dict[str, str] = {"AWS_LAMBDA_FUNCTION_NAME": ""}
        for logical_id, function in resources_of_type(pipeline, "AWS::Lambda::Function").items():
            for key, value in resolve(
                function["Properties"].get("Environment", {}).get("Variables", {}), resolver
            ).items():
                if environment.setdefault(key, value) != value:
                    raise ValueError(
                        f"local mode needs one value per environment variable; {key} differs in {logical_id}"
                    )
        self._exit.enter_context(_patched_env(environment))
        iam_role = self.client("iam").create_role(RoleName="local-lambda", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
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
        self.client("sagemaker").create_model_package_group(ModelPackageGroupName=group_name)

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

    # ------------------------------------------------------------------ runs

    def object_created_event(self, key: str, put_response: dict[str, Any]) -> dict[str, Any]:
        """The event S3 sends EventBridge for a new object (detail-type "Object Created")."""
        bucket = self.deployed.datasets_bucket
        return _event(
            "Object Created",
            "aws.s3",
            [f"arn:aws:s3:::{bucket}"],
            {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {
                    "key": key,
                    "size": 0,
                    "etag": put_response.get("ETag", "").strip('"'),
                    "version-id": put_response.get("VersionId", "null"),
                    "sequencer": "0",
                },
                "request-id": "LOCAL",
                "requester": ACCOUNT,
                "reason": "PutObject",
            },
        )

    def deliver(self, event: dict[str, Any]) -> str | None:
        """EventBridge: every synthesized rule whose pattern matches sends the event to its targets.

        Returns the execution started, if a rule targets the state machine."""
        execution = None
        for rule in self.deployed.rules:
            if rule.pattern is None:
                if event.get("detail-type") != "Scheduled Event" or rule.name not in event["resources"][0]:
                    continue
            elif not EventPattern.load(json.dumps(rule.pattern)).matches_event(event):  # type: ignore[arg-type]
                continue
            for target in rule.targets:
                if ":states:" in target:
                    # EventBridge names each execution itself; a fresh name per delivery.
                    response = self.client("stepfunctions").start_execution(
                        stateMachineArn=target, name=str(uuid.uuid4()), input=json.dumps(event)
                    )
                    execution = str(response["executionArn"])
                elif ":lambda:" in target:
                    result = self.client("lambda").invoke(
                        FunctionName=target.rsplit(":", 1)[-1], Payload=json.dumps(event).encode()
                    )
                    self.target_results.append((rule.name, json.loads(result["Payload"].read())))
        return execution

    def _status_changed(self, description: dict[str, Any]) -> None:
        """Step Functions tells EventBridge when an execution ends (once per execution)."""
        arn = description["executionArn"]
        if arn in self._announced:
            return
        self._announced.add(arn)
        detail = {
            "executionArn": arn,
            "stateMachineArn": description["stateMachineArn"],
            "name": description.get("name", ""),
            "status": description["status"],
            "startDate": int(description["startDate"].timestamp() * 1000),
            "stopDate": int(description.get("stopDate", datetime.now(UTC)).timestamp() * 1000),
            "input": description.get("input", "{}"),
            "output": description.get("output"),
        }
        self.deliver(_event("Step Functions Execution Status Change", "aws.states", [arn], detail))

    def tick(self) -> list[Any]:
        """Every scheduled rule fires once, now (EventBridge's "Scheduled Event"); returns what
        their Lambda targets answered."""
        answered = len(self.target_results)
        for rule in self.deployed.rules:
            if rule.schedule:
                self.deliver(
                    _event("Scheduled Event", "aws.events", [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.name}"], {})
                )
        return [result for _, result in self.target_results[answered:]]

    def stop(self, execution_arn: str, error: str = "UserAborted") -> None:
        """StopExecution. Step Functions ends a task that waits for its token at once; moto's engine
        would wait until the task's timeout, so the waits of that execution are interrupted here."""
        self.client("stepfunctions").stop_execution(executionArn=execution_arn, error=error, cause="stopped locally")
        for execution in stepfunctions_parser_backends[ACCOUNT][REGION]._get_executions():
            if execution.exec_arn == execution_arn and execution.exec_worker is not None:
                # Answered (the answer is never read: the execution is no longer running), not
                # interrupted: an interrupted wait reads as a timeout and runs the Catch.
                for endpoint in list(execution.exec_worker.env.callback_pool_manager._pool.values()):
                    endpoint.notify(CallbackOutcomeSuccess(callback_id=endpoint.callback_id, output="{}"))

    def abort(self, execution_arn: str) -> dict[str, Any]:
        """StopExecution, as a user would in the console; EventBridge then hears ABORTED."""
        sfn = self.client("stepfunctions")
        self.stop(execution_arn)
        deadline = time.time() + 30
        description = sfn.describe_execution(executionArn=execution_arn)
        while description["status"] == "RUNNING" and time.time() < deadline:
            time.sleep(0.1)
            description = sfn.describe_execution(executionArn=execution_arn)
        self._status_changed(description)
        return description

    def put_and_deliver(self, key: str, body: bytes) -> tuple[dict[str, Any], str | None]:
        response = self.client("s3").put_object(Bucket=self.deployed.datasets_bucket, Key=key, Body=body)
        event = self.object_created_event(key, response)
        return event, self.deliver(event)

    def wait(self, execution_arn: str, *, timeout: float = 1800, poll: float = 0.5) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.time() + timeout
        while time.time() < deadline:
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                self._status_changed(description)
                return description
            time.sleep(poll)
        raise TimeoutError(f"execution {execution_arn} still running after {timeout}s")

    def notifications(self) -> list[dict[str, str]]:
        """Messages published to the topic (through an SQS subscription, as a user would read them)."""
        sqs = self.client("sqs")
        out: list[dict[str, str]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.deployed.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                body = json.loads(m["Body"])
                out.append({"subject": body.get("Subject", ""), "message": body["Message"]})
                sqs.delete_message(QueueUrl=self.deployed.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _event(detail_type: str, source: str, resources: list[str], detail: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge event envelope, as AWS services put them on the default bus."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


@contextlib.contextmanager
def _patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
