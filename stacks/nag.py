"""cdk-nag acknowledgments that belong to no single step: the storage stack's CDK helper, the
training role, and the state machine's role. Each step acknowledges its own grants beside them
(`stacks/steps/`), with the helpers of `stacks/findings.py`.
"""

from __future__ import annotations

from pipeline import s3_layout
from stacks.config import PipelineConfig
from stacks.findings import ACCOUNT, KMS_ACTIONS, KMS_GROUP, PARTITION, READ_ACTIONS, READ_GROUP, REGION, XRAY
from stacks.findings import acknowledge as _ack
from stacks.findings import s3_objects as _s3_objects
from stacks.pipeline_stack import PipelineStack
from stacks.storage_stack import StorageStack


def acknowledge_findings(config: PipelineConfig, storage: StorageStack, pipeline: PipelineStack) -> None:
    partition, account, region = PARTITION, ACCOUNT, REGION

    def s3_objects(kind: str, prefix: str) -> str:
        return _s3_objects(config.bucket_name(kind), prefix)

    # --- storage: CDK's singleton that turns on EventBridge notifications for the bucket
    for child in storage.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            _ack(
                child.node.find_child("Role"),
                f"IAM4[Policy::arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "CDK's own BucketNotificationsHandler (enables EventBridge on the dataset bucket) ships "
                "with this managed policy; it only writes that handler's logs.",
            )

    # --- SageMaker execution role
    sm_role = pipeline.sagemaker_role
    for action in READ_ACTIONS:
        _ack(sm_role, f"IAM5[Action::{action}]", f"{READ_GROUP} to datasets/* and to its own output prefixes.")
    for action in ("s3:DeleteObject*", "s3:Abort*"):
        _ack(
            sm_role,
            f"IAM5[Action::{action}]",
            "Training rewrites checkpoints and aborts failed multipart uploads, only under tuning/* and checkpoints/*.",
        )
    for action in KMS_ACTIONS:
        _ack(sm_role, f"IAM5[Action::{action}]", KMS_GROUP + " (model artifacts, checkpoints).")
    _ack(
        sm_role,
        s3_objects("datasets", s3_layout.everything_under(s3_layout.DATASETS)),
        "Training reads any dataset under datasets/: the dataset is chosen per run.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", s3_layout.everything_under(s3_layout.TUNING)),
        "Training jobs write model.tar.gz under tuning/<dataset>/<run>/, names chosen per run.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", s3_layout.everything_under(s3_layout.INPUTS)),
        "Training reads the run's validated indexes under inputs/<dataset>/<run>/, names chosen per run.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", s3_layout.everything_under(s3_layout.CHECKPOINTS)),
        "Managed spot training writes checkpoints under checkpoints/<dataset>/<run>/.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", s3_layout.everything_under(s3_layout.EVALUATION)),
        "The test split's batch transform reads its input manifest and writes its answers under "
        "evaluation/<dataset>/<run>/.",
    )
    for kind in ("TrainingJobs", "TransformJobs"):
        _ack(
            sm_role,
            f"IAM5[Resource::arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/{kind}:*]",
            f"Training and the test transform write log streams (named per job) in SageMaker's {kind} log group only.",
        )
    _ack(
        sm_role,
        "IAM5[Resource::*]",
        "cloudwatch:PutMetricData has no resource type (a condition limits it to /aws/sagemaker/*)"
        + (
            "; with training_vpc, the ENI actions act on interfaces that do not exist yet"
            if config.training_vpc
            else ""
        )
        + ".",
    )

    # --- state machine role: CDK grants lambda:InvokeFunction on each function and its versions
    sm_role_construct = pipeline.state_machine.role
    _ack(sm_role_construct, "IAM5[Resource::*]", XRAY + " (state machine tracing).")
    _ack(
        sm_role_construct,
        "IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the KMS-encrypted topic: GenerateDataKey* on the one ops key only.",
    )
    for name, fn in pipeline.functions.items():
        logical_id = pipeline.get_logical_id(fn.node.default_child)  # type: ignore[arg-type]
        _ack(
            sm_role_construct,
            f"IAM5[Resource::<{logical_id}.Arn>:*]",
            f"CDK's invoke grant covers the versions and aliases of {name} (ARN:*), that function only.",
        )
