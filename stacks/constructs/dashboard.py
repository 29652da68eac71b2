"""One CloudWatch dashboard: runs, tuning jobs in flight, slots in use and the queue, best accuracy,
Lambda errors."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.telemetry import METRICS_NAMESPACE, SERVICE


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
        period = Duration.minutes(5)

        def custom(metric: str, statistic: str, **dimensions: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric,
                dimensions_map={"service": SERVICE, **dimensions},
                statistic=statistic,
                period=period,
                label=" ".join((metric, *dimensions.values())),
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
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
                left=[custom("TuningJobsInFlight", "Maximum"), custom("TrainingJobsInProgress", "Maximum")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Best validation accuracy per run",
                left=[custom("BestValidationAccuracy", "Maximum")],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda errors",
                left=[fn.metric_errors(period=period, label=name) for name, fn in functions.items()],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Slots in use and runs queued, per instance type (the reaper, every 5 minutes)",
                left=[custom("SlotsInUse", "Maximum", InstanceType=t) for t in instance_types],
                right=[custom("QueueDepth", "Maximum", InstanceType=t) for t in instance_types],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Longest wait in the queue (seconds)",
                left=[custom("OldestQueuedSeconds", "Maximum", InstanceType=t) for t in instance_types],
                width=12,
            ),
        )
