"""cdk-nag findings acknowledged one at a time, each on the one resource it concerns.

Every acknowledgment names its exact finding (rule and the action or resource it flags) and
says why the permission is the narrowest IAM allows. A new wildcard anywhere fails synth.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Validations
from constructs import IConstruct

from stacks.config import PipelineConfig
from stacks.pipeline_stack import PipelineStack
from stacks.storage_stack import StorageStack

PACK = "AwsSolutions::AwsSolutions"

READ_GROUP = "CDK's read grant action group (s3:GetObject*, GetBucket*, List*): object reads and listings, scoped"
KMS_GROUP = (
    "CDK's key grant action group (kms:GenerateDataKey*, ReEncrypt*) on the one data key, needed to "
    "write SSE-KMS objects"
)
XRAY = "xray:PutTraceSegments and PutTelemetryRecords (active tracing) support no resource-level permissions"


def _ack(construct: IConstruct, finding: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}-{finding}", reason=reason))


def acknowledge_findings(config: PipelineConfig, storage: StorageStack, pipeline: PipelineStack) -> None:
    partition, account, region = "<AWS::Partition>", "<AWS::AccountId>", "<AWS::Region>"

    def s3_objects(kind: str, prefix: str) -> str:
        name = config.bucket_name(kind).replace(Aws.ACCOUNT_ID, account).replace(Aws.REGION, region)
        return f"IAM5[Resource::arn:{partition}:s3:::{name}/{prefix}]"

    def sm_arn(resource: str) -> str:
        return f"IAM5[Resource::arn:{partition}:sagemaker:{region}:{account}:{resource}]"

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
    for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
        _ack(sm_role, f"IAM5[Action::{action}]", f"{READ_GROUP} to datasets/* and to its own output prefixes.")
    for action in ("s3:DeleteObject*", "s3:Abort*"):
        _ack(
            sm_role,
            f"IAM5[Action::{action}]",
            "Training rewrites checkpoints and aborts failed multipart uploads, only under tuning/* and checkpoints/*.",
        )
    for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
        _ack(sm_role, f"IAM5[Action::{action}]", KMS_GROUP + " (model artifacts, checkpoints).")
    _ack(
        sm_role,
        s3_objects("datasets", "datasets/*"),
        "Training reads any dataset under datasets/: the dataset is chosen per run.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", "tuning/*"),
        "Training jobs write model.tar.gz under tuning/<dataset>/<run>/, names chosen per run.",
    )
    _ack(
        sm_role,
        s3_objects("artifacts", "checkpoints/*"),
        "Managed spot training writes checkpoints under checkpoints/<dataset>/<run>/.",
    )
    _ack(
        sm_role,
        f"IAM5[Resource::arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:*]",
        "Training writes log streams (named per job) in SageMaker's TrainingJobs log group only.",
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

    # --- Lambda roles
    functions = pipeline.lambda_roles
    tuning_jobs = sm_arn("hyper-parameter-tuning-job/*")
    for name, role in functions.items():
        extra = (
            "; sagemaker:ListHyperParameterTuningJobs (finding a run's running jobs) has no resource type either"
            if name == "StopOrphans"
            else ""
        )
        _ack(role, "IAM5[Resource::*]", XRAY + f" ({name}){extra}.")
        _ack(
            pipeline.functions[name],
            "L1",
            "python3.13: the runtime the bundled Powertools 3 supports; the handlers are tested against it.",
        )
    for name in ("StartTuning", "PollTuning", "ChooseBest", "HandleFailure", "StopOrphans"):
        _ack(
            functions[name],
            tuning_jobs,
            "Tuning job names are derived per run (dataset + manifest version) at run time.",
        )
    _ack(
        functions["ChooseBest"],
        sm_arn("training-job/*"),
        "Training job names are chosen by SageMaker per tuning job at run time.",
    )
    _ack(
        functions["RegisterModel"],
        sm_arn(f"model-package/{config.model_package_group}/*"),
        "Versions of this pipeline's one model package group; their numbers are assigned by SageMaker.",
    )
    validate = functions["ValidateDataset"]
    for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
        _ack(
            validate,
            f"IAM5[Action::{action}]",
            f"{READ_GROUP} to datasets/*: validation reads the manifest, .lst files and listings.",
        )
    _ack(
        validate,
        s3_objects("datasets", "datasets/*"),
        "Validation reads whichever dataset was uploaded, under datasets/ only.",
    )
    start = functions["StartTuning"]
    for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
        _ack(start, f"IAM5[Action::{action}]", f"{READ_GROUP} to runs/*: the previous run's record, for warm start.")
    _ack(start, s3_objects("artifacts", "runs/*"), "Reads runs/<dataset>/latest.json of whichever dataset runs.")
    register = functions["RegisterModel"]
    for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
        _ack(register, f"IAM5[Action::{action}]", KMS_GROUP + " (metrics documents).")
    _ack(
        register,
        "IAM5[Action::s3:Abort*]",
        "CDK's put grant includes aborting its own multipart uploads; scoped to metrics/* and runs/*.",
    )
    _ack(
        register,
        s3_objects("artifacts", "metrics/*"),
        "Writes metrics/<dataset>/<run>/metrics.json for whichever dataset runs.",
    )
    _ack(register, s3_objects("artifacts", "runs/*"), "Writes runs/<dataset>/latest.json for whichever dataset runs.")

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
