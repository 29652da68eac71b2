"""The rules: a manifest upload starts the workflow; an execution that ends runs the cleanup; a
schedule runs the reaper of leases."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from pipeline.aws import s3_layout

MANIFEST_PATTERN = s3_layout.MANIFEST_KEY_PATTERN


def manifest_uploaded(stack: Stack, datasets: s3.IBucket, state_machine: sfn.IStateMachine) -> events.Rule:
    """Creating a manifest, and only a manifest, starts a run."""
    rule = events.Rule(
        stack,
        "ManifestUploaded",
        description="Starts the tuning workflow when a dataset manifest is created",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={
                "bucket": {"name": [datasets.bucket_name]},
                "object": {"key": events.Match.wildcard(MANIFEST_PATTERN)},
            },
        ),
    )
    rule.add_target(targets.SfnStateMachine(state_machine, retry_attempts=8, max_event_age=Duration.hours(24)))
    return rule


ENDED = ["ABORTED", "TIMED_OUT", "FAILED", "SUCCEEDED"]  # every end state of a Standard execution


def execution_ended(stack: Stack, state_machine: sfn.IStateMachine, cleanup: lambda_.IFunction) -> events.Rule:
    """An execution that ends, however it ends, leaves no GPU running and no model behind: an abort or
    a timeout runs no state of its own, and a run that registered after giving up on its evaluation
    (a retried error, a Lambda killed at its timeout) may have left the transform running."""
    rule = events.Rule(
        stack,
        "ExecutionEnded",
        description="Stops what an ended execution left running: its tuning jobs, its test transform",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={"status": ENDED, "stateMachineArn": [state_machine.state_machine_arn]},
        ),
    )
    rule.add_target(targets.LambdaFunction(cleanup, retry_attempts=8, max_event_age=Duration.hours(6)))
    return rule


REAPER_MINUTES = 5


def reap_leases(stack: Stack, cleanup: lambda_.IFunction) -> events.Rule:
    """Every few minutes the cleanup runs as the reaper: what executions that no longer run still hold
    is stopped, given back and settled (a lost end event must not block the queue forever), and the
    queue's state is published."""
    rule = events.Rule(
        stack,
        "ReapLeases",
        description="Frees the slots of ended executions and publishes slots in use and queue depth",
        schedule=events.Schedule.rate(Duration.minutes(REAPER_MINUTES)),
    )
    rule.add_target(targets.LambdaFunction(cleanup, retry_attempts=2, max_event_age=Duration.minutes(REAPER_MINUTES)))
    return rule
