"""Storage stack: secure defaults, lifecycle, removal policy, pinned logical IDs."""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.config import load_config
from stacks.storage_stack import StorageStack
from tests.conftest import cdk_context


@pytest.fixture(scope="module")
def template(synth) -> Template:
    return Template.from_json(synth.storage_template)


def test_key_rotates(template: Template) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_bucket_blocks_public_access_and_is_versioned(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_data_buckets_use_the_customer_managed_key(template: Template) -> None:
    encrypted = template.find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {
                                "ServerSideEncryptionByDefault": {
                                    "SSEAlgorithm": "aws:kms",
                                    "KMSMasterKeyID": Match.any_value(),
                                }
                            }
                        )
                    ]
                }
            }
        },
    )
    assert set(encrypted) == {"Datasets0030EE04", "Artifacts82DD59A1"}


def test_every_bucket_denies_plain_http(template: Template) -> None:
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_dataset_bucket_sends_events_to_eventbridge(template: Template) -> None:
    template.has_resource_properties(
        "Custom::S3BucketNotifications", {"NotificationConfiguration": {"EventBridgeConfiguration": {}}}
    )


def test_data_buckets_log_access_to_the_log_bucket(template: Template) -> None:
    for logical_id in ("Datasets0030EE04", "Artifacts82DD59A1"):
        props = template.to_json()["Resources"][logical_id]["Properties"]
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogs8B620ECA"}


def test_checkpoints_expire_and_noncurrent_versions_expire(template: Template) -> None:
    rules = template.to_json()["Resources"]["Artifacts82DD59A1"]["Properties"]["LifecycleConfiguration"]["Rules"]
    by_id = {r["Id"]: r for r in rules}
    assert by_id["checkpoints"]["Prefix"] == "checkpoints/"
    assert by_id["checkpoints"]["ExpirationInDays"] == 14
    # The test transform's input and per-image answers; the scores are kept under metrics/.
    assert (by_id["evaluation"]["Prefix"], by_id["evaluation"]["ExpirationInDays"]) == ("evaluation/", 14)
    assert by_id["noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}


def test_stateful_logical_ids_are_pinned(template: Template) -> None:
    # Changing one of these replaces the resource: the data or the key would be lost.
    resources = template.to_json()["Resources"]
    for logical_id, type_name in {
        "DataKey17AFBB84": "AWS::KMS::Key",
        "Datasets0030EE04": "AWS::S3::Bucket",
        "Artifacts82DD59A1": "AWS::S3::Bucket",
        "AccessLogs8B620ECA": "AWS::S3::Bucket",
    }.items():
        assert resources[logical_id]["Type"] == type_name


def test_dev_data_is_deleted_with_the_stack(template: Template) -> None:
    assert template.to_json()["Resources"]["Datasets0030EE04"]["DeletionPolicy"] == "Delete"


def test_prod_data_is_retained() -> None:
    app = App(context=cdk_context())
    stack = StorageStack(app, "prod-storage", config=load_config(cdk_context(), "prod"))
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert {resources[i]["DeletionPolicy"] for i in ("Datasets0030EE04", "Artifacts82DD59A1", "DataKey17AFBB84")} == {
        "Retain"
    }
