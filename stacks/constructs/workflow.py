"""The tuning workflow: validate -> admit -> start -> poll -> release -> choose best -> [admit, evaluate on the
test split] -> register -> release and settle -> notify.

Admit waits on a task token: a run that finds no free slots waits in the queue, making no
requests, until the run that gives slots back sends it on (or its max_queue_wait_seconds runs out).

Every task retries throttling and transient errors with backoff and catches everything else
into one failure path that stops running tuning jobs, notifies in plain words, and fails.
Payloads stay small: tasks return references and counters, never whole describe responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.best_job import TuningFailed
from pipeline.contract import path
from pipeline.errors import NOTIFICATION_FAILED, QUEUE_WAIT_EXPIRED, TransientAwsError
from pipeline.slots import EVALUATION, TRAINING

TRANSIENT_ERRORS = [
    TransientAwsError.__name__,
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
SNS_TRANSIENT_ERRORS = ["SNS.ThrottledException", "SNS.InternalErrorException", "SNS.KMSThrottlingException"]


EXECUTION = {"execution.$": "$$.Execution.Id", "started.$": "$$.Execution.StartTime"}


class TuningWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        topic: sns.ITopic,
        name: str,
        queue_timeout: Duration,
        timeout: Duration,
        logs_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = functions

        # Failure path: stop what runs, say what happened, fail.
        on_failure = self.invoke("HandleFailure", None, path("notification"))
        publish_failure = self.publish("NotifyFailure", topic)
        failed = sfn.Fail(
            self, "RunFailed", error_path=path("error", "Error"), cause_path=path("notification", "message")
        )
        # When even the failure notice cannot be published, the execution fails under its own
        # name: the ExecutionsFailed alarm and the execution history still tell.
        publish_failure.add_catch(
            sfn.Fail(
                self,
                "NotificationFailed",
                error=NOTIFICATION_FAILED,
                cause="The failure notice could not be published to the topic; read this execution's history.",
            ),
            errors=["States.ALL"],
            result_path="$.notify_error",
        )
        release_on_failure = self.release("ReleaseOnFailure", settle=True)
        release_on_failure.add_catch(publish_failure, errors=["States.ALL"], result_path="$.release_error")
        failure_chain = on_failure.next(release_on_failure).next(publish_failure).next(failed)

        validate = self.invoke("ValidateDataset", None, path("run"))
        admit_training = self.admit("AdmitTraining", TRAINING, queue_timeout)
        queue_wait_expired = sfn.Pass(
            self,
            "QueueWaitExpired",
            parameters={
                "Error": QUEUE_WAIT_EXPIRED,
                "Cause": f"The run waited {int(queue_timeout.to_seconds()):,} s (max_queue_wait_seconds) in the queue "
                "for its training instance slots and did not get them; no job was started.",
            },
            result_path=path("error"),
        )
        admit_training.add_catch(queue_wait_expired, errors=["States.Timeout"], result_path=path("error"))
        queue_wait_expired.next(failure_chain)
        release_training = self.release("ReleaseTraining", phase=TRAINING)
        admit_evaluation = self.admit("AdmitEvaluation", EVALUATION, queue_timeout)
        release_all = self.release("ReleaseAndSettle", settle=True)
        start = self.invoke("StartTuning", {"run.$": path("run"), "execution.$": "$$.Execution.Id"}, path("tuning"))
        # The interval validation chose: the configured one, longer for runs so long that
        # polling would fill the execution history (25,000 events).
        wait = sfn.Wait(self, "WaitForTuning", time=sfn.WaitTime.seconds_path(path("run", "schedule", "poll_seconds")))
        poll = self.invoke("PollTuning", {"run_id.$": path("run", "run_id"), "tuning.$": path("tuning")}, path("poll"))
        tuning_failed = sfn.Pass(
            self,
            "TuningFailed",
            parameters={"Error": TuningFailed.__name__, "Cause.$": path("poll", "failure_reason")},
            result_path=path("error"),
        )
        choose = self.invoke(
            "ChooseBest",
            {"run_id.$": path("run", "run_id"), "tuning.$": path("tuning"), "cost.$": path("run", "cost")},
            path("best"),
        )
        register = self.invoke(
            "RegisterModel",
            {"run.$": path("run"), "tuning.$": path("tuning"), "best.$": path("best"), "tested.$": path("tested")},
            path("registered"),
        )
        notify = self.invoke(
            "ComposeSuccess",
            {
                "run.$": path("run"),
                "admission.$": path("admission"),
                "best.$": path("best"),
                "registered.$": path("registered"),
                "tested.$": path("tested"),
            },
            path("notification"),
        )
        # The held-out test split, when the dataset has one: a batch transform of the best model.
        start_evaluation = self.invoke(
            "StartEvaluation",
            {"run.$": path("run"), "best.$": path("best"), "execution.$": "$$.Execution.Id"},
            path("evaluation"),
        )
        wait_evaluation = sfn.Wait(
            self,
            "WaitForEvaluation",
            time=sfn.WaitTime.seconds_path(path("run", "schedule", "evaluation_poll_seconds")),
        )
        check_evaluation = self.invoke(
            "CheckEvaluation", {"run.$": path("run"), "evaluation.$": path("evaluation")}, path("tested")
        )
        not_evaluated = sfn.Pass(
            self, "NoTestSplit", result=sfn.Result.from_object({"status": "NotEvaluated"}), result_path=path("tested")
        )
        publish_success = self.publish("NotifySuccess", topic)

        for step in (validate, admit_training, start, poll, choose, register, notify, publish_success):
            step.add_catch(on_failure, errors=["States.ALL"], result_path=path("error"))
        release_training.add_catch(choose, errors=["States.ALL"], result_path="$.release_error")
        release_all.add_catch(notify, errors=["States.ALL"], result_path="$.release_error")
        # The tuning is paid for: an evaluation that cannot start or finish (no transform quota,
        # answers not found, a Lambda timeout on a large split) still registers the best job,
        # marked failed, so never auto-approved, with the reason in the notice.
        evaluation_failed = sfn.Pass(
            self,
            "EvaluationFailed",
            # The whole caught object: a path to its Cause alone would fail the Pass were it absent.
            parameters={"status": "Failed", "error.$": "$.evaluation_error"},
            result_path=path("tested"),
        )
        for step in (admit_evaluation, start_evaluation, check_evaluation):
            step.add_catch(evaluation_failed, errors=["States.ALL"], result_path="$.evaluation_error")
        evaluation_failed.next(register)

        register.next(release_all).next(notify).next(publish_success).next(sfn.Succeed(self, "Registered"))
        definition = (
            validate.next(admit_training)
            .next(start)
            .next(wait)
            .next(poll)
            .next(
                sfn.Choice(self, "TuningDone?")
                .when(sfn.Condition.string_equals(path("poll", "status"), "InProgress"), wait)
                .when(
                    sfn.Condition.string_equals(path("poll", "status"), "Completed"),
                    release_training.next(choose).next(
                        sfn.Choice(self, "TestSplit?")
                        .when(
                            sfn.Condition.is_not_null(path("run", "data", "test")),
                            admit_evaluation.next(start_evaluation)
                            .next(wait_evaluation)
                            .next(check_evaluation)
                            .next(
                                sfn.Choice(self, "EvaluationDone?")
                                .when(
                                    sfn.Condition.string_equals(path("tested", "status"), "InProgress"), wait_evaluation
                                )
                                # Completed or Failed: the tuning is paid for, register either way
                                # (a failed evaluation: pending manual approval, with the reason).
                                .otherwise(register)
                            ),
                        )
                        .otherwise(not_evaluated.next(register))
                    ),
                )
                .otherwise(tuning_failed.next(failure_chain))
            )
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=logs_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )

    def _retried(self, task: tasks.LambdaInvoke) -> tasks.LambdaInvoke:
        task.add_retry(
            errors=TRANSIENT_ERRORS,
            interval=Duration.seconds(5),
            backoff_rate=2,
            max_attempts=6,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def invoke(
        self, name: str, payload: dict[str, Any] | None, result_path: str, function: str | None = None
    ) -> tasks.LambdaInvoke:
        """The task of step `name`, which runs that step's function (stacks/steps), or `function`'s."""
        return self._retried(
            tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.functions[function or name],
                # No payload: the function gets the whole state input (Parameters omitted).
                payload=sfn.TaskInput.from_object(payload) if payload else None,
                payload_response_only=True,
                retry_on_service_exceptions=False,
                result_path=result_path,
            )
        )

    def admit(self, name: str, phase: str, queue_timeout: Duration) -> tasks.LambdaInvoke:
        """Admit's task: the run goes on when its task token is sent, with its lease (at
        `admission.<phase>`), or fails with States.Timeout after max_queue_wait_seconds."""
        return self._retried(
            tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.functions["Admit"],
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload=sfn.TaskInput.from_object(
                    {"run.$": path("run"), **EXECUTION, "token": sfn.JsonPath.task_token, "phase": phase}
                ),
                task_timeout=sfn.Timeout.duration(queue_timeout),
                retry_on_service_exceptions=False,
                result_path=path("admission", phase),
            )
        )

    def release(self, name: str, **what: Any) -> tasks.LambdaInvoke:
        """Give slots back (of one phase, or all and settle the ledger); a failure here is left to
        the cleanup rule and the reaper: the run goes on."""
        return self.invoke(name, {**EXECUTION, **what}, sfn.JsonPath.DISCARD, function="Release")

    def publish(self, name: str, topic: sns.ITopic) -> tasks.SnsPublish:
        """Publish the composed `$.notification` (subject and message) to the topic."""
        task = tasks.SnsPublish(
            self,
            name,
            topic=topic,
            subject=sfn.JsonPath.string_at(path("notification", "subject")),
            message=sfn.TaskInput.from_json_path_at(path("notification", "message")),
            result_path=sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=SNS_TRANSIENT_ERRORS, interval=Duration.seconds(5), backoff_rate=2, max_attempts=4)
        return task
