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

The deploy is local/deploy.py; the Lambda runtime, local/lambda_runtime.py.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.events.models import EventPattern
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local.deploy import ACCOUNT, REGION, Deployed, deploy
from local.lambda_runtime import LAMBDA_LOGS, invoke, patched_env
from local.sagemaker.quotas import AccountQuotas
from local.sagemaker.server import SageMakerServer
from local.sagemaker.service import LocalSageMaker


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
        self._exit.enter_context(patched_env(env))
        log_file = self._exit.enter_context(self.lambda_log.open("a"))
        LAMBDA_LOGS.target = log_file
        self._exit.callback(setattr, LAMBDA_LOGS, "target", None)
        self._exit.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        original = LambdaSimpleBackend.invoke
        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        self._exit.callback(setattr, LambdaSimpleBackend, "invoke", original)
        self.sagemaker_service = LocalSageMaker(
            s3_client=lambda: boto3.client("s3", region_name=REGION), seed=self.seed, quotas=self.quotas
        )
        server = self._exit.enter_context(SageMakerServer(self.sagemaker_service))
        self._exit.enter_context(
            patched_env(
                {"AWS_ENDPOINT_URL_SAGEMAKER": server.endpoint, "AWS_ENDPOINT_URL_SERVICE_QUOTAS": server.endpoint}
            )
        )
        self.deployed = deploy(self.cdk_out, self.stack_prefix, self._exit)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sagemaker_service.shutdown(timeout=60)
        self._exit.close()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    # ------------------------------------------------------------------ deploy

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
