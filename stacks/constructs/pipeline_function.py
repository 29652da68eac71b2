"""One pipeline Lambda: its own role, its own encrypted log group, the shared code asset."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline.aws.telemetry import METRICS_NAMESPACE, SERVICE
from stacks.constructs.function_code import function_code_dir


class PipelineFunction(Construct):
    """A handler from `lambdas/handlers/<module>.py` with a least-privilege role of its own."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        module: str,
        description: str,
        environment: dict[str, str],
        logs_key: kms.IKey,
        log_retention: logs.RetentionDays,
        timeout_seconds: int = 60,
        memory_mb: int = 512,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda {module})",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=logs_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.X86_64,
            handler=f"handlers.{module}.handler",
            code=lambda_.Code.from_asset(str(function_code_dir())),
            role=self.role,
            log_group=self.log_group,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                **environment,
            },
        )
        # Write to its own log group only (no AWSLambdaBasicExecutionRole managed policy).
        self.log_group.grant_write(self.role)
