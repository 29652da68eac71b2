"""Stateless workflow stack: composes the steps, the workflow, its triggers, alarms and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.constructs.alarms import PipelineAlarms
from stacks.constructs.dashboard import PipelineDashboard
from stacks.constructs.notifications import notification_topic, ops_key
from stacks.constructs.sagemaker_role import SageMakerExecutionRole
from stacks.constructs.triggers import execution_ended, manifest_uploaded, reap_leases
from stacks.constructs.workflow import TuningWorkflow
from stacks.steps import STEPS
from stacks.steps.base import StepResources


class PipelineStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PipelineConfig, data_key: kms.IKey, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The buckets by their deterministic names: no bucket ARN is exported across stacks.
        datasets, artifacts = (
            s3.Bucket.from_bucket_attributes(
                self, kind.title(), bucket_name=config.bucket_name(kind), encryption_key=data_key
            )
            for kind in ("datasets", "artifacts")
        )
        # The governance table by its deterministic name, like the buckets.
        table = dynamodb.Table.from_table_attributes(
            self, "GovernanceTable", table_name=config.table_name, encryption_key=data_key
        )
        self.ops_key = ops_key(self)
        self.topic = notification_topic(self, self.ops_key, config.notification_email)
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=config.model_package_group,
            model_package_group_description="Best image-classification models found by the tuning pipeline",
        )
        self.sagemaker_role = SageMakerExecutionRole(
            self, "SageMakerExecution", datasets=datasets, artifacts=artifacts, vpc=config.training_vpc
        ).role
        resources = StepResources(
            config, datasets, artifacts, data_key, self.ops_key, config.log_retention, self.sagemaker_role, table
        )
        self.steps = {step.__name__: step(self, step.__name__, resources=resources) for step in STEPS}
        self.functions = {name: step.function for name, step in self.steps.items()}
        self.lambda_roles = {name: step.role for name, step in self.steps.items()}

        self.workflow = TuningWorkflow(
            self,
            "Workflow",
            steps=self.steps,
            topic=self.topic,
            name=config.state_machine_name,
            queue_timeout=Duration.seconds(config.governance.max_queue_wait_seconds),
            timeout=Duration.seconds(config.workflow_timeout_seconds),
            ops_key=self.ops_key,
            log_retention=config.log_retention,
        )
        self.state_machine = self.workflow.state_machine
        self.trigger = manifest_uploaded(self, datasets, self.state_machine)
        self.cleanup = execution_ended(self, self.state_machine, self.functions["StopOrphans"])
        self.reaper = reap_leases(self, self.functions["StopOrphans"])
        self.observe(config)

    def observe(self, config: PipelineConfig) -> None:
        """Alarms, the dashboard and the stack's outputs."""
        self.alarms = PipelineAlarms(
            self,
            "Alarms",
            state_machine=self.state_machine,
            functions=self.functions,
            topic=self.topic,
            queue=(config.governance.capacity, config.governance.queue_alarm_seconds),
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            name=f"{config.prefix}-{config.env_name}-tuning",
            state_machine=self.state_machine,
            functions=self.functions,
            instance_types=tuple(config.governance.capacity),
        ).dashboard

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "ModelPackageGroupName", value=config.model_package_group)
        CfnOutput(self, "SageMakerRoleArn", value=self.sagemaker_role.role_arn)
