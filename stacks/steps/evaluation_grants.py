"""What the two evaluation steps share: where their errors go, and their grants: the test split's index (datasets/*), the evaluation
prefix of the artifacts bucket, and the run's transform jobs; each with its acknowledgment."""

from __future__ import annotations

from pipeline.aws import s3_layout
from stacks.findings import KMS_ACTIONS, KMS_GROUP, READ_ACTIONS, READ_GROUP, acknowledge, s3_objects, sagemaker
from stacks.steps.base import Step

TRANSFORM_JOBS = "transform-job/*"
EVALUATION = s3_layout.everything_under(s3_layout.EVALUATION)
DATASETS = s3_layout.everything_under(s3_layout.DATASETS)
# Where an evaluation step's catch puts the error: the tuning is paid for, so an evaluation that
# cannot start or finish still registers the best job, marked failed (the workflow's EvaluationFailed).
EVALUATION_ERROR = "$.evaluation_error"


def grant_evaluation_data(step: Step, *, read_evaluation: bool) -> None:
    resources, config = step.resources, step.resources.config
    resources.datasets.grant_read(step.role, DATASETS)
    if read_evaluation:
        resources.artifacts.grant_read_write(step.role, EVALUATION)
    else:
        resources.artifacts.grant_put(step.role, EVALUATION)
    for action in READ_ACTIONS:
        acknowledge(
            step.role,
            f"IAM5[Action::{action}]",
            f"{READ_GROUP} to datasets/* (the test split's index) and evaluation/* (the transform's answers).",
        )
    for action in KMS_ACTIONS:
        acknowledge(step.role, f"IAM5[Action::{action}]", KMS_GROUP + " (evaluation documents).")
    acknowledge(step.role, "IAM5[Action::s3:Abort*]", "CDK's put grant: its own multipart uploads, evaluation/* only.")
    if read_evaluation:
        acknowledge(step.role, "IAM5[Action::s3:DeleteObject*]", "CDK's read-write grant, evaluation/* only.")
    acknowledge(
        step.role,
        s3_objects(config.bucket_name("datasets"), DATASETS),
        "Reads the test split's index of whichever dataset runs, under datasets/ only.",
    )
    acknowledge(
        step.role,
        s3_objects(config.bucket_name("artifacts"), EVALUATION),
        "evaluation/<dataset>/<run>/ of whichever dataset runs.",
    )


def allow_transform_jobs(step: Step, sid: str, *actions: str) -> None:
    step.allow(sid, actions, [step.arn(TRANSFORM_JOBS)])
    acknowledge(step.role, sagemaker(TRANSFORM_JOBS), "Transform job names are derived per run at run time.")
