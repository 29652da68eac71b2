"""Every role's permissions, listed and justified: a new permission fails this test until it is
added here with its reason."""

from __future__ import annotations

import json

import pytest

LAMBDA_BASE = {
    "logs:CreateLogStream": "write its own log group",
    "logs:PutLogEvents": "write its own log group",
    "xray:PutTraceSegments": "active tracing",
    "xray:PutTelemetryRecords": "active tracing",
}
READ_GROUP = {
    "s3:GetObject*": "CDK read grant, scoped to one prefix",
    "s3:GetBucket*": "CDK read grant (bucket metadata)",
    "s3:List*": "CDK read grant: listing the prefix",
    "kms:Decrypt": "objects are SSE-KMS",
    "kms:DescribeKey": "objects are SSE-KMS",
}
PUT_GROUP = {
    "s3:PutObject": "write its documents",
    "s3:PutObjectLegalHold": "CDK put grant",
    "s3:PutObjectRetention": "CDK put grant",
    "s3:PutObjectTagging": "CDK put grant",
    "s3:PutObjectVersionTagging": "CDK put grant",
    "s3:Abort*": "abort its own multipart uploads",
    "kms:Encrypt": "objects are SSE-KMS",
    "kms:Decrypt": "objects are SSE-KMS",
    "kms:ReEncrypt*": "CDK key grant",
    "kms:GenerateDataKey*": "objects are SSE-KMS",
}

# The governance table (one table ARN, no index): slots, queue and ledger; its data key.
GOVERN = {
    "dynamodb:GetItem": "read a pool, a ticket, the month's total",
    "dynamodb:Query": "the queue of an instance type, the month's reservations",
    "dynamodb:UpdateItem": "take and give back slots, reserve and settle, under conditions",
    "dynamodb:DeleteItem": "a ticket given back",
    "dynamodb:PutItem": "a reservation (in a transaction)",
    "dynamodb:ConditionCheckItem": "transactions",
    "kms:Decrypt": "the table is encrypted with the data key",
    "kms:Encrypt": "the table is encrypted with the data key",
    "kms:GenerateDataKey": "the table is encrypted with the data key",
    "kms:DescribeKey": "the table is encrypted with the data key",
    "states:SendTaskSuccess": "send a queued run on with its task token",
}
SETTLE = {
    "sagemaker:ListHyperParameterTuningJobs": "the run's tuning jobs, for its bill",
    "sagemaker:ListTags": "only those the execution created",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob": "their training jobs",
    "sagemaker:DescribeTrainingJob": "BillableTimeInSeconds",
    "sagemaker:DescribeTransformJob": "the transform's billed time",
}

EXPECTED: dict[str, dict[str, str]] = {
    "ValidateDatasetRole": {**LAMBDA_BASE, **READ_GROUP},  # reads datasets/* only
    "StartTuningRole": {
        **LAMBDA_BASE,
        **READ_GROUP,  # runs/* (the previous run, for warm start) and datasets/* (the indexes to copy)
        **PUT_GROUP,  # inputs/* only: the indexes and manifests as validated
        "sagemaker:CreateHyperParameterTuningJob": "start the run",
        "sagemaker:AddTags": "the run's tags on its tuning jobs",
        "sagemaker:DescribeHyperParameterTuningJob": "on ResourceInUse: the job's ARN, to read its owner",
        "sagemaker:ListTags": "on ResourceInUse: whether this execution created the job",
        "sagemaker:StopHyperParameterTuningJob": "a start that fails halfway stops the jobs it created",
        "iam:PassRole": "hand the SageMaker role to the training jobs (condition: PassedToService)",
        "kms:CreateGrant": "output encryption key named in the request",
    },
    "AdmitRole": {**LAMBDA_BASE, **GOVERN, "servicequotas:ListServiceQuotas": "the account's applied quota"},
    "ReleaseRole": {**LAMBDA_BASE, **GOVERN, **SETTLE},
    "PollTuningRole": {**LAMBDA_BASE, "sagemaker:DescribeHyperParameterTuningJob": "status and counters"},
    "ChooseBestRole": {
        **LAMBDA_BASE,
        "sagemaker:DescribeHyperParameterTuningJob": "best training job",
        "sagemaker:DescribeTrainingJob": "its model artifact; billable seconds of each job",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob": "the run's training jobs, for the bill",
    },
    "StartEvaluationRole": {
        **LAMBDA_BASE,
        **READ_GROUP,  # datasets/*: the test split's index
        **PUT_GROUP,  # evaluation/*: the transform's input manifest
        "sagemaker:CreateModel": "the best training job as a model",
        "sagemaker:CreateTransformJob": "the batch transform of the test split",
        "sagemaker:DeleteModel": "when the transform cannot be created, no model is left behind",
        "sagemaker:AddTags": "the run's tags on its model and transform job",
        "sagemaker:DescribeTransformJob": "on ResourceInUse: the job's ARN, to read its owner",
        "sagemaker:ListTags": "on ResourceInUse: whether this execution started it",
        "iam:PassRole": "hand the SageMaker role to the model (condition: PassedToService)",
        "kms:CreateGrant": "output encryption key named in the request",
    },
    "CheckEvaluationRole": {
        **LAMBDA_BASE,
        **READ_GROUP,  # datasets/* (the index) and evaluation/* (the answers)
        **PUT_GROUP,  # evaluation/*: the evaluation document
        "s3:DeleteObject*": "CDK's read-write grant, evaluation/* only",
        "sagemaker:DescribeTransformJob": "the transform's status",
        "sagemaker:StopTransformJob": "stop it after evaluation_max_seconds",
        "sagemaker:DeleteModel": "the model served the transform only",
    },
    "RegisterModelRole": {
        **LAMBDA_BASE,
        **PUT_GROUP,  # metrics/* and runs/* only
        "sagemaker:CreateModelPackage": "the new version",
        "sagemaker:ListModelPackages": "the approved version, for auto-approval",
        "sagemaker:DescribeModelPackage": "its accuracy",
    },
    "ComposeSuccessRole": dict(LAMBDA_BASE),  # formats text only
    "HandleFailureRole": {
        **LAMBDA_BASE,
        "sagemaker:DescribeHyperParameterTuningJob": "which jobs still run",
        "sagemaker:StopHyperParameterTuningJob": "stop them",
        "sagemaker:DescribeTransformJob": "whether the test transform still runs",
        "sagemaker:StopTransformJob": "stop it",
        "sagemaker:DeleteModel": "and delete its model",
    },
    "StopOrphansRole": {
        **LAMBDA_BASE,
        "sagemaker:ListHyperParameterTuningJobs": "find the run's running jobs",
        "sagemaker:ListTransformJobs": "find the run's running test transform",
        "sagemaker:ListTags": "stop only those the ended execution created",
        "sagemaker:StopHyperParameterTuningJob": "stop them",
        "sagemaker:StopTransformJob": "stop it",
        "sagemaker:DescribeModel": "the run's evaluation model, if still there: its ARN, to read its owner",
        "sagemaker:DeleteModel": "delete it when the ended execution created it",
        **GOVERN,
        **SETTLE,
        "states:DescribeExecution": "the reaper: whether an execution holding slots still runs",
    },
    "SageMakerExecutionRole": {
        **READ_GROUP,  # datasets/* and its own output prefixes
        **PUT_GROUP,  # tuning/* and checkpoints/* only
        "s3:DeleteObject*": "rewrite checkpoints",
        "logs:CreateLogGroup": "/aws/sagemaker/TrainingJobs",
        "logs:CreateLogStream": "/aws/sagemaker/TrainingJobs",
        "logs:PutLogEvents": "/aws/sagemaker/TrainingJobs",
        "logs:DescribeLogStreams": "/aws/sagemaker/TrainingJobs",
        "cloudwatch:PutMetricData": "training metrics, /aws/sagemaker/* namespaces",
    },
    "WorkflowStateMachineRole": {
        "lambda:InvokeFunction": "the pipeline's functions",
        "sns:Publish": "notifications",
        "kms:GenerateDataKey*": "the topic is KMS-encrypted",
        "kms:Decrypt": "the topic is KMS-encrypted",
        "xray:PutTraceSegments": "tracing",
        "xray:PutTelemetryRecords": "tracing",
        "xray:GetSamplingRules": "tracing",
        "xray:GetSamplingTargets": "tracing",
        "logs:CreateLogDelivery": "execution logs (Step Functions requires these on *)",
        "logs:GetLogDelivery": "execution logs",
        "logs:UpdateLogDelivery": "execution logs",
        "logs:DeleteLogDelivery": "execution logs",
        "logs:ListLogDeliveries": "execution logs",
        "logs:PutResourcePolicy": "execution logs",
        "logs:DescribeResourcePolicies": "execution logs",
        "logs:DescribeLogGroups": "execution logs",
    },
    "WorkflowStateMachineEventsRole": {"states:StartExecution": "the rule starts the workflow"},
}


@pytest.fixture(scope="module")
def granted(synth) -> dict[str, dict[str, list]]:
    """Role logical id prefix -> action -> resources, from the synthesized policies."""
    out: dict[str, dict[str, list]] = {}
    for resource in synth.pipeline_template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for role in resource["Properties"]["Roles"]:
            name = next((n for n in sorted(EXPECTED, key=len, reverse=True) if role["Ref"].startswith(n)), role["Ref"])
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    out.setdefault(name, {}).setdefault(action, []).append(statement["Resource"])
    return out


def test_every_role_has_exactly_the_listed_permissions(granted) -> None:
    assert set(granted) == set(EXPECTED)
    for role, actions in EXPECTED.items():
        assert set(granted[role]) == set(actions), role


def test_only_actions_without_resource_types_use_a_wildcard_resource(granted) -> None:
    allowed_star = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "cloudwatch:PutMetricData",
        "sagemaker:ListHyperParameterTuningJobs",
        "sagemaker:ListTransformJobs",
        # The Service Authorization Reference lists no resource type for these two.
        "states:SendTaskSuccess",
        "servicequotas:ListServiceQuotas",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for role, actions in granted.items():
        for action, resources in actions.items():
            if any(r == "*" or (isinstance(r, list) and "*" in r) for r in resources):
                assert action in allowed_star, (role, action)


def test_datasets_are_read_only_for_everyone(granted) -> None:
    for role, actions in granted.items():
        for action, resources in actions.items():
            if action.startswith(("s3:Put", "s3:Delete", "s3:Abort")):
                assert "datasets" not in json.dumps(resources), (role, action)
