"""The role SageMaker training jobs run as: read datasets, write outputs, nothing more."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.aws import s3_layout
from stacks.findings import (
    ACCOUNT,
    KMS_ACTIONS,
    KMS_GROUP,
    PARTITION,
    READ_ACTIONS,
    READ_GROUP,
    REGION,
    acknowledge,
    s3_objects,
)

DATASETS_PREFIX = s3_layout.everything_under(s3_layout.DATASETS)
# Training writes models and checkpoints; the test split's batch transform reads its input
# manifest and writes its answers under evaluation/.
OUTPUT_PREFIXES = tuple(
    s3_layout.everything_under(p) for p in (s3_layout.TUNING, s3_layout.CHECKPOINTS, s3_layout.EVALUATION)
)

LOG_GROUPS = ("TrainingJobs", "TransformJobs")  # what training and the test transform write to


class SageMakerExecutionRole(Construct):
    """The role, its grants, and the cdk-nag acknowledgments of exactly those grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        datasets: s3.IBucket,
        artifacts: s3.IBucket,
        vpc: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="SageMaker training jobs of the image-classification tuning pipeline",
        )
        self.grant_data(datasets, artifacts)
        self.grant_logs_and_metrics()
        if vpc:
            self.grant_network_interfaces()
        self.acknowledge(datasets.bucket_name, artifacts.bucket_name, vpc=bool(vpc))

    def grant_data(self, datasets: s3.IBucket, artifacts: s3.IBucket) -> None:
        datasets.grant_read(self.role, DATASETS_PREFIX)
        for prefix in OUTPUT_PREFIXES:
            artifacts.grant_read_write(self.role, prefix)
        # The run's indexes and manifests as validated (pinning.py): what the channels read.
        artifacts.grant_read(self.role, s3_layout.everything_under(s3_layout.INPUTS))

    def grant_logs_and_metrics(self) -> None:
        training_logs = [
            Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/{kind}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for kind in LOG_GROUPS
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=training_logs,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; scoped by namespace below.
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )

    def grant_network_interfaces(self) -> None:
        """Training in your VPC: SageMaker creates and removes the jobs' network interfaces."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],  # the interfaces do not exist yet; Describe* has no resource type
                conditions={"StringEquals": {"aws:RequestedRegion": Aws.REGION}},
            )
        )

    def acknowledge(self, datasets: str, artifacts: str, *, vpc: bool) -> None:
        """cdk-nag, beside the grants above: the action groups CDK's grants use, the prefixes."""
        role = self.role
        for action in READ_ACTIONS:
            acknowledge(role, f"IAM5[Action::{action}]", f"{READ_GROUP} to datasets/* and to its own output prefixes.")
        for action in ("s3:DeleteObject*", "s3:Abort*"):
            acknowledge(
                role,
                f"IAM5[Action::{action}]",
                "Training rewrites checkpoints and aborts failed multipart uploads, only under tuning/* and checkpoints/*.",
            )
        for action in KMS_ACTIONS:
            acknowledge(role, f"IAM5[Action::{action}]", KMS_GROUP + " (model artifacts, checkpoints).")
        for bucket, prefix, reason in (
            (
                datasets,
                s3_layout.DATASETS,
                "Training reads any dataset under datasets/: the dataset is chosen per run.",
            ),
            (
                artifacts,
                s3_layout.TUNING,
                "Training jobs write model.tar.gz under tuning/<dataset>/<run>/, names chosen per run.",
            ),
            (
                artifacts,
                s3_layout.INPUTS,
                "Training reads the run's validated indexes under inputs/<dataset>/<run>/, names chosen per run.",
            ),
            (
                artifacts,
                s3_layout.CHECKPOINTS,
                "Managed spot training writes checkpoints under checkpoints/<dataset>/<run>/.",
            ),
            (
                artifacts,
                s3_layout.EVALUATION,
                "The test split's batch transform reads its input manifest and writes its answers under "
                "evaluation/<dataset>/<run>/.",
            ),
        ):
            acknowledge(role, s3_objects(bucket, s3_layout.everything_under(prefix)), reason)
        for kind in LOG_GROUPS:
            acknowledge(
                role,
                f"IAM5[Resource::arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/{kind}:*]",
                f"Training and the test transform write log streams (named per job) in SageMaker's {kind} log group only.",
            )
        acknowledge(
            role,
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource type (a condition limits it to /aws/sagemaker/*)"
            + ("; with training_vpc, the ENI actions act on interfaces that do not exist yet" if vpc else "")
            + ".",
        )
