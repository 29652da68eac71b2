"""Error classification: what is retried, what is not, and what a quota error says."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pipeline.aws.errors import (
    TransientAwsError,
    classified_aws_errors,
    error_code,
    error_message,
    is_transient,
    quota_message,
)
from tests.sample_request import client_error


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_an_unknown_server_error_is_transient(status: int) -> None:
    assert is_transient(client_error("SomethingNobodyListed", status))
    with pytest.raises(TransientAwsError), classified_aws_errors():
        raise client_error("SomethingNobodyListed", status)


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "ResourceNotFound"])
def test_a_client_error_is_not_transient(code: str) -> None:
    assert not is_transient(client_error(code, 400))
    with pytest.raises(ClientError), classified_aws_errors():
        raise client_error(code, 400)


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("ThrottlingException", 400, True),
        ("SlowDown", 503, True),
        ("RequestLimitExceeded", 400, True),
        ("InternalFailure", 400, True),
        ("Anything", 500, True),
        ("Anything", 499, False),
        ("ResourceLimitExceeded", 400, False),
    ],
)
def test_what_is_waited_out_and_what_is_not(code: str, status: int, transient: bool) -> None:
    assert is_transient(client_error(code, status)) is transient


def test_the_quota_message_names_the_instance_quota_and_the_fix() -> None:
    # Runs are admitted against min(capacity, quota), so a refusal means the quota is shared or unread.
    assert quota_message("limit is 0.", "ml.g5.xlarge") == (
        "SageMaker refused to start the tuning job: limit is 0. Runs are admitted against the deployment's "
        "capacity and, where it can be read, the account's quota (`make runs` lists the slots held and their "
        "limits): this refusal means something outside this pipeline uses the same quota, or the quota could "
        "not be read and the capacity is above it. In the Service Quotas console (service 'Amazon SageMaker'), "
        "request an increase of 'ml.g5.xlarge for training job usage' (and of 'Maximum number of concurrent "
        "hyperparameter tuning jobs' if that is the quota named above), or lower capacity or max_parallel_jobs "
        "in cdk.json. Then upload the manifest again."
    )


def test_an_error_without_code_or_status_is_not_transient() -> None:
    assert is_transient(ClientError({}, "Op")) is False
    assert is_transient(ClientError({"Error": {}, "ResponseMetadata": {}}, "Op")) is False


def test_an_error_code_and_message_are_read_even_when_the_response_lacks_them() -> None:
    # botocore builds ClientError from whatever the service sent: a HEAD's 404 has a code and no body.
    assert (error_code(ClientError({}, "Op")), error_message(ClientError({}, "Op"))) == ("", "")
    assert error_code(ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")) == "404"
    assert error_message(ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")) == "Not Found"


def test_a_transform_refused_by_its_quota_says_the_tuning_is_kept_and_what_to_do() -> None:
    assert quota_message("limit is 0.", "ml.m5.xlarge", usage="transform") == (
        "SageMaker refused to start the test transform: limit is 0. In the Service Quotas console (service "
        "'Amazon SageMaker'), request an increase of 'ml.m5.xlarge for transform job usage', or set another "
        "evaluation_instance_type in cdk.json. The model is registered without its test accuracy: approve it by "
        "hand, or upload the manifest again once the quota allows (a new run)."
    )
