"""One CloudWatch dashboard: runs, tuning jobs in flight, slots in use and the queue, best accuracy,
Lambda errors."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.aws.telemetry import METRICS_NAMESPACE, SERVICE


class PipelineDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        instance_types: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self.period = Duration.minutes(5)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        self.add_runs(state_machine)
        self.add_accuracy_and_errors(functions)
        self.add_queue(instance_types)

    def custom(self, metric: str, statistic: str, **dimensions: str) -> cloudwatch.Metric:
        """One of the handlers' embedded-metric-format metrics."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric,
            dimensions_map={"service": SERVICE, **dimensions},
            statistic=statistic,
            period=self.period,
            label=" ".join((metric, *dimensions.values())),
        )

    def add_runs(self, state_machine: sfn.StateMachine) -> None:
        period = self.period
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs (executions)",
                left=[
                    state_machine.metric_started(period=period),
                    state_machine.metric_succeeded(period=period),
                    state_machine.metric_failed(period=period),
                    state_machine.metric_timed_out(period=period),
                    state_machine.metric_aborted(period=period),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Tuning and training jobs in flight",
                left=[self.custom("TuningJobsInFlight", "Maximum"), self.custom("TrainingJobsInProgress", "Maximum")],
                width=12,
            ),
        )

    def add_accuracy_and_errors(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Best validation accuracy per run",
                left=[self.custom("BestValidationAccuracy", "Maximum")],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[fn.metric_errors(period=self.period, label=name) for name, fn in functions.items()],
                width=12,
            ),
        )

    def add_queue(self, instance_types: tuple[str, ...]) -> None:
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Slots in use and runs queued, per instance type (the reaper, every 5 minutes)",
                left=[self.custom("SlotsInUse", "Maximum", InstanceType=t) for t in instance_types],
                right=[self.custom("QueueDepth", "Maximum", InstanceType=t) for t in instance_types],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Longest wait in the queue (seconds)",
                left=[self.custom("OldestQueuedSeconds", "Maximum", InstanceType=t) for t in instance_types],
                width=12,
            ),
        )
