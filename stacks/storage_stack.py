"""Stateful resources: the key, the buckets and the governance table. Their logical IDs are pinned by a test."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.aws import s3_layout
from stacks.config import PipelineConfig
from stacks.findings import PARTITION, acknowledge


class StorageStack(Stack):
    """Dataset, artifacts and access-log buckets and the governance table under one customer-managed key."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        auto_delete = not config.retain_data

        self.key = kms.Key(
            self,
            "DataKey",
            description=f"{config.prefix}-{config.env_name}: datasets, tuning artifacts, notifications, governance table",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        # Server access logs cannot be delivered to a KMS-encrypted bucket: S3-managed keys.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=auto_delete,
        )
        self.datasets, self.artifacts = self.data_buckets(config, removal)
        self.governance = self.governance_table(config, removal)
        self.acknowledge_cdk_helper()

    def data_buckets(self, config: PipelineConfig, removal: RemovalPolicy) -> tuple[s3.Bucket, s3.Bucket]:
        """The datasets and artifacts buckets: KMS (the data key), TLS only, private, versioned, access-logged."""
        common_rules = [
            s3.LifecycleRule(id="noncurrent-versions", noncurrent_version_expiration=Duration.days(90)),
            s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
        ]

        def data_bucket(construct_id: str, kind: str, **extra: Any) -> s3.Bucket:
            return s3.Bucket(
                self,
                construct_id,
                bucket_name=config.bucket_name(kind),
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{kind}/",
                removal_policy=removal,
                auto_delete_objects=not config.retain_data,
                **extra,
            )

        datasets = data_bucket("Datasets", "datasets", event_bridge_enabled=True, lifecycle_rules=common_rules)
        artifacts = data_bucket(
            "Artifacts",
            "artifacts",
            lifecycle_rules=[
                s3.LifecycleRule(id="checkpoints", prefix=s3_layout.CHECKPOINTS, expiration=Duration.days(14)),
                # The test transform's input manifest and one answer per test image; the scores
                # themselves are kept under metrics/.
                s3.LifecycleRule(id="evaluation", prefix=s3_layout.EVALUATION, expiration=Duration.days(14)),
                *common_rules,
            ],
        )
        return datasets, artifacts

    def governance_table(self, config: PipelineConfig, removal: RemovalPolicy) -> dynamodb.Table:
        # Slots, the queue and the month's ledger, shared by every run (pipeline/governance/slots.py, ledger.py).
        return dynamodb.Table(
            self,
            "Governance",
            table_name=config.table_name,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.production,
            removal_policy=removal,
        )

    def acknowledge_cdk_helper(self) -> None:
        """cdk-nag, for CDK's singleton that turns on EventBridge notifications for the datasets bucket."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child.node.find_child("Role"),
                    f"IAM4[Policy::arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own BucketNotificationsHandler (enables EventBridge on the dataset bucket) ships "
                    "with this managed policy; it only writes that handler's logs.",
                )
