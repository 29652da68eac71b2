"""Alarms that notify the topic: failed, timed-out, aborted executions; Lambda errors; a run that has
waited in the queue for slots longer than the deployment allows."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.aws.telemetry import METRICS_NAMESPACE, SERVICE


class PipelineAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        topic: sns.ITopic,
        queue: tuple[Mapping[str, int], int],
    ) -> None:
        super().__init__(scope, construct_id)
        action = actions.SnsAction(topic)
        period = Duration.minutes(5)
        metrics = {
            "ExecutionsFailed": state_machine.metric_failed(period=period),
            "ExecutionsTimedOut": state_machine.metric_timed_out(period=period),
            "ExecutionsAborted": state_machine.metric_aborted(period=period),
            "ExecutionThrottled": state_machine.metric_throttled(period=period),
        }
        metrics.update({f"{name}Errors": fn.metric_errors(period=period) for name, fn in functions.items()})
        self.alarms: list[cloudwatch.Alarm] = []
        for name, metric in metrics.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{name} >= 1 in 5 minutes: see the tuning pipeline's logs",
            )
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
        capacity, wait_seconds = queue
        for instance_type in capacity:
            waited = cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="OldestQueuedSeconds",
                dimensions_map={"service": SERVICE, "InstanceType": instance_type},
                statistic="Maximum",
                period=period,
            )
            alarm = cloudwatch.Alarm(
                self,
                f"QueueWait{''.join(part.title() for part in instance_type.split('.'))}",
                metric=waited,
                threshold=wait_seconds,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=(
                    f"A run has waited more than {wait_seconds} s for {instance_type} slots (queue_alarm_seconds): "
                    "`make runs` shows who holds them; raise capacity in cdk.json or the account's quota"
                ),
            )
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
