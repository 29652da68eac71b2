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

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.aws.errors import NOTIFICATION_FAILED, QUEUE_WAIT_EXPIRED, TuningFailed
from pipeline.contract import path
from pipeline.governance.slots import EVALUATION, TRAINING
from stacks.findings import XRAY, acknowledge
from stacks.steps.admit import Admit
from stacks.steps.base import Step
from stacks.steps.evaluation_grants import EVALUATION_ERROR

SNS_TRANSIENT_ERRORS = ["SNS.ThrottledException", "SNS.InternalErrorException", "SNS.KMSThrottlingException"]


class TuningWorkflow(Construct):
    """The state machine: the steps' tasks (each built by its step, stacks/steps) chained, with the
    waits and choices between them and the one failure path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        steps: Mapping[str, Step],
        topic: sns.ITopic,
        name: str,
        queue_timeout: Duration,
        timeout: Duration,
        ops_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.steps, self.topic, self.queue_timeout = steps, topic, queue_timeout
        failure = self.failure_path()
        register = self.success_path(failure)
        choose = steps["ChooseBest"].task(on_error=failure)
        test_split = (
            sfn.Choice(self, "TestSplit?")
            .when(sfn.Condition.is_not_null(path("run", "data", "test")), self.evaluation(register))
            .otherwise(
                sfn.Pass(
                    self,
                    "NoTestSplit",
                    result=sfn.Result.from_object({"status": "NotEvaluated"}),
                    result_path=path("tested"),
                ).next(register)
            )
        )
        after_tuning = steps["Release"].task("ReleaseTraining", on_error=choose, phase=TRAINING)
        after_tuning.next(choose).next(test_split)
        admission = self.admit.admission(
            "AdmitTraining", TRAINING, queue_timeout, on_timeout=self.queue_wait_expired(failure), on_error=failure
        )
        definition = (
            steps["ValidateDataset"].task(on_error=failure).next(admission).next(self.tuning(failure, after_tuning))
        )
        self.state_machine = self.machine(definition, name, timeout, ops_key, log_retention)

    def tuning(self, failure: sfn.IChainable, completed: sfn.IChainable) -> sfn.IChainable:
        """Start the run's tuning jobs and poll them until they end: on to `completed`, or failed."""
        # The interval validation chose: the configured one, longer for runs so long that
        # polling would fill the execution history (25,000 events).
        wait = sfn.Wait(self, "WaitForTuning", time=sfn.WaitTime.seconds_path(path("run", "schedule", "poll_seconds")))
        tuning_failed = sfn.Pass(
            self,
            "TuningFailed",
            parameters={"Error": TuningFailed.__name__, "Cause.$": path("poll", "failure_reason")},
            result_path=path("error"),
        )
        return (
            self.steps["StartTuning"]
            .task(on_error=failure)
            .next(wait)
            .next(self.steps["PollTuning"].task(on_error=failure))
            .next(
                sfn.Choice(self, "TuningDone?")
                .when(sfn.Condition.string_equals(path("poll", "status"), "InProgress"), wait)
                .when(sfn.Condition.string_equals(path("poll", "status"), "Completed"), completed)
                .otherwise(tuning_failed.next(failure))
            )
        )

    @property
    def admit(self) -> Admit:
        step = self.steps["Admit"]
        assert isinstance(step, Admit)
        return step

    def failure_path(self) -> sfn.IChainable:
        """Stop what runs, give the slots back, say what happened, fail."""
        publish_failure = self.publish("NotifyFailure")
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
        release = self.steps["Release"].task("ReleaseOnFailure", on_error=publish_failure, settle=True)
        handle = self.steps["HandleFailure"].task()
        # HandleFailure failing too (after its retries) must not keep the slots or the notice:
        # a plain notice instead, then the same release; StopOrphans stops the jobs as the execution ends.
        plain_notice = sfn.Pass(
            self,
            "PlainFailureNotice",
            parameters={
                "subject": "Tuning failed (the failure notice could not be composed)",
                # Only the errors' names: every catch records an Error, not always a Cause, and a
                # path that is absent would fail this state.
                "message": sfn.JsonPath.format(
                    "The run failed with {}, and composing its failure notice failed too, with {}. The tuning "
                    "and transform jobs this execution started are stopped when it ends. Read the execution "
                    "history in the Step Functions console for details, then upload the manifest again.",
                    sfn.JsonPath.string_at(path("error", "Error")),
                    sfn.JsonPath.string_at(path("handle_error", "Error")),
                ),
            },
            result_path=path("notification"),
        )
        handle.add_catch(plain_notice.next(release), errors=["States.ALL"], result_path=path("handle_error"))
        return handle.next(release).next(publish_failure).next(failed)

    def queue_wait_expired(self, failure: sfn.IChainable) -> sfn.Pass:
        seconds = int(self.queue_timeout.to_seconds())
        expired = sfn.Pass(
            self,
            "QueueWaitExpired",
            parameters={
                "Error": QUEUE_WAIT_EXPIRED,
                "Cause": f"The run waited {seconds:,} s (max_queue_wait_seconds) in the queue "
                "for its training instance slots and did not get them; no job was started.",
            },
            result_path=path("error"),
        )
        expired.next(failure)
        return expired

    def success_path(self, failure: sfn.IChainable) -> tasks.LambdaInvoke:
        """Register, give everything back and settle, compose the notice, publish it."""
        publish_success = self.publish("NotifySuccess")
        publish_success.add_catch(failure, errors=["States.ALL"], result_path=path("error"))
        notify = self.steps["ComposeSuccess"].task(on_error=failure)
        register = self.steps["RegisterModel"].task(on_error=failure)
        release_all = self.steps["Release"].task("ReleaseAndSettle", on_error=notify, settle=True)
        register.next(release_all).next(notify).next(publish_success).next(sfn.Succeed(self, "Registered"))
        return register

    def evaluation(self, register: sfn.IChainable) -> sfn.IChainable:
        """The held-out test split: a batch transform of the best model, followed until it ends. The
        tuning is paid for: an evaluation that cannot start or finish (no transform quota, answers
        not found, a Lambda timeout on a large split) still registers the best job, marked failed,
        so never auto-approved, with the reason in the notice."""
        evaluation_failed = sfn.Pass(
            self,
            "EvaluationFailed",
            # The whole caught object: a path to its Cause alone would fail the Pass were it absent.
            parameters={"status": "Failed", "error.$": EVALUATION_ERROR},
            result_path=path("tested"),
        )
        evaluation_failed.next(register)
        wait = sfn.Wait(
            self,
            "WaitForEvaluation",
            time=sfn.WaitTime.seconds_path(path("run", "schedule", "evaluation_poll_seconds")),
        )
        check = self.steps["CheckEvaluation"].task(on_error=evaluation_failed)
        admit = self.admit.admission(
            "AdmitEvaluation", EVALUATION, self.queue_timeout, on_error=evaluation_failed, error_path=EVALUATION_ERROR
        )
        return (
            admit.next(self.steps["StartEvaluation"].task(on_error=evaluation_failed))
            .next(wait)
            .next(check)
            .next(
                sfn.Choice(self, "EvaluationDone?")
                .when(sfn.Condition.string_equals(path("tested", "status"), "InProgress"), wait)
                # Completed or Failed: the tuning is paid for, register either way
                # (a failed evaluation: pending manual approval, with the reason).
                .otherwise(register)
            )
        )

    def machine(
        self,
        definition: sfn.IChainable,
        name: str,
        timeout: Duration,
        ops_key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> sfn.StateMachine:
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=ops_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        acknowledge(machine.role, "IAM5[Resource::*]", XRAY + " (state machine tracing).")
        # The topic is encrypted with the same ops key as the logs: publishing needs a data key.
        ops_key.grant(machine.role, "kms:GenerateDataKey*", "kms:Decrypt")
        acknowledge(
            machine.role,
            "IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the KMS-encrypted topic: GenerateDataKey* on the one ops key only.",
        )
        self.acknowledge_invokes(machine)
        return machine

    def acknowledge_invokes(self, machine: sfn.StateMachine) -> None:
        """cdk-nag, beside the grants: CDK grants lambda:InvokeFunction on the function of each step
        the machine has a task of, and on its versions (StopOrphans runs from its rules, not here)."""
        for step_name, step in self.steps.items():
            if not step.task_states:
                continue
            logical_id = Stack.of(self).get_logical_id(step.function.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                machine.role,
                f"IAM5[Resource::<{logical_id}.Arn>:*]",
                f"CDK's invoke grant covers the versions and aliases of {step_name} (ARN:*), that function only.",
            )

    def publish(self, name: str) -> tasks.SnsPublish:
        """Publish the composed `$.notification` (subject and message) to the topic."""
        task = tasks.SnsPublish(
            self,
            name,
            topic=self.topic,
            subject=sfn.JsonPath.string_at(path("notification", "subject")),
            message=sfn.TaskInput.from_json_path_at(path("notification", "message")),
            result_path=sfn.JsonPath.DISCARD,
        )
        task.add_retry(errors=SNS_TRANSIENT_ERRORS, interval=Duration.seconds(5), backoff_rate=2, max_attempts=4)
        return task
