"""Stateless workflow stack: composes the constructs, wires the grants, declares outputs."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.config import PipelineConfig
from stacks.constructs.alarms import PipelineAlarms
from stacks.constructs.dashboard import PipelineDashboard
from stacks.constructs.pipeline_function import PipelineFunction
from stacks.constructs.sagemaker_role import SageMakerExecutionRole
from stacks.constructs.workflow import TuningWorkflow, WorkflowFunctions

MANIFEST_PATTERN = "datasets/*/manifest.json"


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        data_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The buckets by their deterministic names: IAM scopes stay readable and no bucket ARN
        # is exported across stacks (exports pin the stateful stack).
        datasets = s3.Bucket.from_bucket_attributes(
            self, "Datasets", bucket_name=config.bucket_name("datasets"), encryption_key=data_key
        )
        artifacts = s3.Bucket.from_bucket_attributes(
            self, "Artifacts", bucket_name=config.bucket_name("artifacts"), encryption_key=data_key
        )
        self.datasets, self.artifacts = datasets, artifacts
        retention = getattr(logs.RetentionDays, _retention_name(config.log_retention_days))

        # Key for what this stack keeps at rest: logs and notifications.
        self.ops_key = kms.Key(
            self, "OpsKey", enable_key_rotation=True, description="tuning pipeline logs and notifications"
        )
        self.ops_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        self.ops_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

        self.topic = sns.Topic(self, "Notifications", master_key=self.ops_key, enforce_ssl=True)
        # A topic policy replaces SNS's default one: without this statement no alarm of this
        # account could publish, and aborted or timed-out runs would go unnoticed.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsOfThisAccountPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))

        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=config.model_package_group,
            model_package_group_description="Best image-classification models found by the tuning pipeline",
        )
        group_arn = self.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=config.model_package_group
        )
        package_arns = self.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{config.model_package_group}/*"
        )

        self.sagemaker_role = SageMakerExecutionRole(
            self, "SageMakerExecution", datasets=datasets, artifacts=artifacts, vpc=config.training_vpc
        ).role

        def function(name: str, module: str, description: str, env: dict[str, str] | None = None) -> PipelineFunction:
            return PipelineFunction(
                self,
                name,
                module=module,
                description=description,
                environment=env or {},
                logs_key=self.ops_key,
                log_retention=retention,
            )

        validate = function(
            "ValidateDataset",
            "validate_dataset",
            "Validates an uploaded dataset before any GPU starts",
            {
                "TUNING_DEFAULTS": json.dumps(config.tuning.to_dict(), separators=(",", ":")),
                # The state machine's timeout: validation refuses runs that could outlive it.
                "WORKFLOW_TIMEOUT_SECONDS": str(config.workflow_timeout_seconds),
            },
        )
        start = function(
            "StartTuning",
            "start_tuning",
            "Starts the run's hyperparameter tuning jobs",
            {
                "SAGEMAKER_ROLE_ARN": self.sagemaker_role.role_arn,
                "ARTIFACTS_BUCKET": artifacts.bucket_name,
                "KMS_KEY_ARN": data_key.key_arn,
                **({"TRAINING_VPC": json.dumps(config.training_vpc)} if config.training_vpc else {}),
            },
        )
        poll = function("PollTuning", "poll_tuning", "Reports the run's tuning jobs' status")
        choose = function("ChooseBest", "choose_best", "Chooses the best training job of the run")
        register = function(
            "RegisterModel",
            "register_model",
            "Registers the best model in the SageMaker Model Registry",
            {"MODEL_PACKAGE_GROUP": config.model_package_group, "ARTIFACTS_BUCKET": artifacts.bucket_name},
        )
        notify = function("ComposeSuccess", "notify", "Composes the success notification")
        on_failure = function(
            "HandleFailure", "on_failure", "Stops running tuning jobs and composes the failure notification"
        )
        stop_orphans = function(
            "StopOrphans", "stop_orphans", "Stops the tuning jobs of an aborted, timed-out or failed execution"
        )

        # --- grants, one role each ------------------------------------------------------
        datasets.grant_read(validate.role, "datasets/*")
        tuning_jobs = self.format_arn(service="sagemaker", resource="hyper-parameter-tuning-job", resource_name="*")
        training_jobs = self.format_arn(service="sagemaker", resource="training-job", resource_name="*")
        start.role.add_to_policy(
            iam.PolicyStatement(
                sid="CreateTuningJobs",
                # Describe + ListTags: on ResourceInUse, whether this execution created the job.
                actions=[
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:AddTags",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTags",
                ],
                resources=[tuning_jobs],
            )
        )
        start.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassOnlyTheTrainingRole",
                actions=["iam:PassRole"],
                resources=[self.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        artifacts.grant_read(start.role, "runs/*")
        data_key.grant(start.role, "kms:DescribeKey", "kms:CreateGrant")
        describe_tuning = iam.PolicyStatement(
            sid="DescribeTuningJobs", actions=["sagemaker:DescribeHyperParameterTuningJob"], resources=[tuning_jobs]
        )
        poll.role.add_to_policy(describe_tuning)
        choose.role.add_to_policy(describe_tuning)
        choose.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeTrainingJobs", actions=["sagemaker:DescribeTrainingJob"], resources=[training_jobs]
            )
        )
        choose.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListTrainingJobsForBilling",
                actions=["sagemaker:ListTrainingJobsForHyperParameterTuningJob"],
                resources=[tuning_jobs],
            )
        )
        on_failure.role.add_to_policy(
            iam.PolicyStatement(
                sid="StopTuningJobs",
                actions=["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:StopHyperParameterTuningJob"],
                resources=[tuning_jobs],
            )
        )
        stop_orphans.role.add_to_policy(
            iam.PolicyStatement(
                sid="StopOwnTuningJobs",
                # ListTags: stop only the jobs tagged with the execution that ended.
                actions=["sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTags"],
                resources=[tuning_jobs],
            )
        )
        stop_orphans.role.add_to_policy(
            iam.PolicyStatement(
                sid="FindRunningTuningJobs",
                actions=["sagemaker:ListHyperParameterTuningJobs"],
                resources=["*"],  # List* actions have no resource type
            )
        )
        register.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterModelPackage",
                actions=["sagemaker:CreateModelPackage", "sagemaker:ListModelPackages"],
                resources=[group_arn, package_arns],
            )
        )
        register.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadApprovedPackage", actions=["sagemaker:DescribeModelPackage"], resources=[package_arns]
            )
        )
        artifacts.grant_put(register.role, "metrics/*")
        artifacts.grant_put(register.role, "runs/*")

        functions = {
            "ValidateDataset": validate,
            "StartTuning": start,
            "PollTuning": poll,
            "ChooseBest": choose,
            "RegisterModel": register,
            "ComposeSuccess": notify,
            "HandleFailure": on_failure,
            "StopOrphans": stop_orphans,
        }
        self.functions = {name: f.function for name, f in functions.items()}
        self.lambda_roles = {name: f.role for name, f in functions.items()}

        self.workflow = TuningWorkflow(
            self,
            "Workflow",
            functions=WorkflowFunctions(
                validate=validate.function,
                start=start.function,
                poll=poll.function,
                choose=choose.function,
                register=register.function,
                notify=notify.function,
                on_failure=on_failure.function,
            ),
            topic=self.topic,
            timeout=Duration.seconds(config.workflow_timeout_seconds),
            logs_key=self.ops_key,
            log_retention=retention,
        )
        self.state_machine = self.workflow.state_machine
        # Publishing to a KMS-encrypted topic needs the key too.
        self.ops_key.grant(self.state_machine.role, "kms:GenerateDataKey*", "kms:Decrypt")

        # --- trigger: creating a manifest, and only a manifest, starts a run -----------------
        self.trigger = events.Rule(
            self,
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
        self.trigger.add_target(
            targets.SfnStateMachine(self.state_machine, retry_attempts=8, max_event_age=Duration.hours(24))
        )

        # --- an execution that ends without reaching its failure path leaves no GPU running ----
        self.cleanup = events.Rule(
            self,
            "ExecutionEnded",
            description="Stops the tuning jobs of an aborted, timed-out or failed execution",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["ABORTED", "TIMED_OUT", "FAILED"],
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
        )
        self.cleanup.add_target(
            targets.LambdaFunction(stop_orphans.function, retry_attempts=8, max_event_age=Duration.hours(6))
        )

        self.alarms = PipelineAlarms(
            self, "Alarms", state_machine=self.state_machine, functions=self.functions, topic=self.topic
        )

        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            name=f"{config.prefix}-{config.env_name}-tuning",
            state_machine=self.state_machine,
            functions=self.functions,
        ).dashboard

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "NotificationTopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "ModelPackageGroupName", value=config.model_package_group)
        CfnOutput(self, "SageMakerRoleArn", value=self.sagemaker_role.role_arn)


def _retention_name(days: int) -> str:
    return {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1827: "FIVE_YEARS",
        3653: "TEN_YEARS",
    }[days]
