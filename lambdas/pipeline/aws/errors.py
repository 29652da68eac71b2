"""Error types the workflow's Retry and Catch rules act on, by name.

Step Functions sees a Lambda's exception class name as the error name: `TransientAwsError` is
retried with backoff, everything else is caught and reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        # DynamoDB: a write to an item a transaction is writing at the same moment.
        "TransactionConflictException",
    }
)


# Error names the state machine raises itself (the handlers' are their exception class names).
NOTIFICATION_FAILED = "NotificationFailed"  # even the failure notice could not be published
WORKFLOW_TIMEOUT = "States.Timeout"  # the execution outlived the state machine's timeout
QUEUE_WAIT_EXPIRED = "QueueWaitExpired"  # a run waited max_queue_wait_seconds for slots in vain


class TransientAwsError(RuntimeError):
    """Throttling or a 5xx that outlived the SDK's own retries: Step Functions retries it."""


class QuotaExceeded(RuntimeError):
    """ResourceLimitExceeded: a SageMaker quota stops the run; the message names it."""


class EvaluationIncomplete(RuntimeError):
    """The test transform's answers do not cover the test split: the run registers without them."""


def quota_message(detail: str, instance_type: str, usage: str = "training") -> str:
    """The refusal's message, naming the Service Quotas entry `<type> for <usage> job usage`:
    `usage` is "training", "spot training" (a run with use_spot) or "transform"."""
    if usage == "transform":  # the tuning is done and registered: only the evaluation is missing
        return (
            f"SageMaker refused to start the test transform: {detail} In the Service Quotas console (service "
            f"'Amazon SageMaker'), request an increase of '{instance_type} for transform job usage', or set "
            "another evaluation_instance_type in cdk.json. The model is registered without its test accuracy: "
            "approve it by hand, or upload the manifest again once the quota allows (a new run)."
        )
    return (
        f"SageMaker refused to start the tuning job: {detail} Runs are admitted against the deployment's "
        "capacity and, where it can be read, the account's quota (`make runs` lists the slots held and their "
        "limits): this refusal means something outside this pipeline uses the same quota, or the quota could "
        "not be read and the capacity is above it. In the Service Quotas console (service 'Amazon SageMaker'), "
        f"request an increase of '{instance_type} for {usage} job usage' (and of 'Maximum number of concurrent "
        "hyperparameter tuning jobs' if that is the quota named above), or lower capacity or "
        "max_parallel_jobs in cdk.json. Then upload the manifest again."
    )


def error_code(exc: ClientError) -> str:
    """The AWS error code ("ResourceNotFound", or "404" for a HEAD), "" when the response has none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def conflicted(error: ClientError) -> bool:
    """A DynamoDB transaction cancelled because another wrote the same item at the same moment
    (reason TransactionConflict): worth trying again, unlike a condition that failed."""
    reasons = error.response.get("CancellationReasons") or []
    return error_code(error) == "TransactionCanceledException" and any(
        r.get("Code") == "TransactionConflict" for r in reasons
    )


def is_transient(error: ClientError) -> bool:
    code = error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in TRANSIENT_CODES or status >= 500 or conflicted(error)


@contextmanager
def classified_aws_errors(instance_type: str = "", usage: str = "training") -> Iterator[None]:
    """Re-raise AWS errors under the names the workflow's Retry/Catch rules use. `usage`: the
    quota's kind, "training" (tuning jobs), "spot training" (with use_spot) or "transform"."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = error_message(exc)
        if is_transient(exc):
            raise TransientAwsError(f"{code}: {message}") from exc
        if code == "ResourceLimitExceeded":
            raise QuotaExceeded(quota_message(message, instance_type or "the GPU instance type", usage)) from exc
        raise


def caught(error: str, cause: str) -> tuple[str, str]:
    """The error name and message a Catch recorded. A Lambda's error arrives as a JSON string
    (errorType, errorMessage, stackTrace); the state machine's own (States.Timeout...) as text."""
    if cause.startswith("{"):
        try:
            parsed = json.loads(cause)
        except json.JSONDecodeError:
            return error, cause
        if isinstance(parsed, dict):
            return str(parsed.get("errorType", error)), str(parsed.get("errorMessage", cause))
    return error, cause


class TuningFailed(RuntimeError):
    """Every tuning job of the run ended without a usable training job."""


class NoSuccessfulTrainingJob(TuningFailed):
    """The tuning finished but no training job completed with an objective value."""


class BudgetExceeded(ValueError):
    """The worst case of the run is above the configured budget; nothing was started."""


class DatasetError(ValueError):
    """The dataset is unusable; the message says where and how to fix it."""


class MonthlyBudgetExceeded(BudgetExceeded):
    """The run's worst case does not fit in what is left of the month's budget; nothing was started."""


class SettingsError(ValueError):
    """A setting is invalid. The message names where it came from, the key and the fix."""


class AdmissionRefused(RuntimeError):
    """The run can never be admitted (it needs more slots at once than the deployment allows, or
    its instance type has no capacity): nothing was started."""
