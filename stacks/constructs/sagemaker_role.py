"""The role SageMaker training jobs run as: read datasets, write outputs, nothing more."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline import s3_layout

DATASETS_PREFIX = s3_layout.everything_under(s3_layout.DATASETS)
# Training writes models and checkpoints; the test split's batch transform reads its input
# manifest and writes its answers under evaluation/.
OUTPUT_PREFIXES = tuple(
    s3_layout.everything_under(p) for p in (s3_layout.TUNING, s3_layout.CHECKPOINTS, s3_layout.EVALUATION)
)


class SageMakerExecutionRole(Construct):
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
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="SageMaker training jobs of the image-classification tuning pipeline",
        )
        datasets.grant_read(self.role, DATASETS_PREFIX)
        for prefix in OUTPUT_PREFIXES:
            artifacts.grant_read_write(self.role, prefix)
        # The run's indexes and manifests as validated (pinning.py): what the channels read.
        artifacts.grant_read(self.role, s3_layout.everything_under(s3_layout.INPUTS))
        training_logs = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/{kind}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for kind in ("TrainingJobs", "TransformJobs")
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
        if vpc:
            # Training in your VPC: SageMaker creates and removes the jobs' network interfaces.
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
