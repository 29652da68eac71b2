"""cdk-nag acknowledgments: one finding at a time, on the one construct it concerns.

The helpers here spell a finding's id exactly as cdk-nag reports it, so an acknowledgment
written beside the grant it justifies matches that grant and nothing wider.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Validations
from constructs import IConstruct

PACK = "AwsSolutions::AwsSolutions"
PARTITION, ACCOUNT, REGION = "<AWS::Partition>", "<AWS::AccountId>", "<AWS::Region>"
READ_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
KMS_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
READ_GROUP = "CDK's read grant action group (s3:GetObject*, GetBucket*, List*): object reads and listings, scoped"
KMS_GROUP = (
    "CDK's key grant action group (kms:GenerateDataKey*, ReEncrypt*) on the one data key, needed to "
    "write SSE-KMS objects"
)
XRAY = "xray:PutTraceSegments and PutTelemetryRecords (active tracing) support no resource-level permissions"


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}-{finding}", reason=reason))


def s3_objects(bucket_name: str, prefix: str) -> str:
    """The IAM5 finding for objects under `prefix` of a bucket named with CloudFormation pseudo values."""
    name = bucket_name.replace(Aws.ACCOUNT_ID, ACCOUNT).replace(Aws.REGION, REGION)
    return f"IAM5[Resource::arn:{PARTITION}:s3:::{name}/{prefix}]"


def sagemaker(resource: str) -> str:
    """The IAM5 finding for SageMaker resources of this account and region, e.g. `training-job/*`."""
    return f"IAM5[Resource::arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:{resource}]"
