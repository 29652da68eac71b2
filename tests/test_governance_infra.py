"""The governance resources as synthesized: the table, the queue's task, the reaper, the alarm.

Expected values come from the governance issue and cdk.json's `dev` block (capacity
ml.g4dn.xlarge 4 and ml.m5.xlarge 2, max_queue_wait_seconds 86,400, queue_alarm_seconds 3,600).
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from local.assembly import fake_resolver, state_machine_definitions
from stacks.config import ConfigError, load_config
from tests.conftest import cdk_context

DEV_QUEUE_WAIT, DEV_ALARM = 86_400, 3_600


@pytest.fixture(scope="module")
def storage(synth) -> Template:
    return Template.from_json(synth.storage_template)


@pytest.fixture(scope="module")
def pipeline(synth) -> Template:
    return Template.from_json(synth.pipeline_template)


@pytest.fixture(scope="module")
def states(synth) -> dict:
    (asl,) = state_machine_definitions(synth.pipeline_template, fake_resolver()).values()
    return asl["States"]


def test_the_table_is_on_demand_encrypted_with_the_data_key_and_recoverable(storage: Template) -> None:
    storage.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "ic-tuning-dev-governance",
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^DataKey"), "Arn"]},
            },
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        },
    )


def test_dynamodb_permissions_name_the_table_and_nothing_wider(pipeline: Template) -> None:
    granted = []
    for policy in pipeline.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("dynamodb:") for a in actions):
                granted.append(statement)
                assert statement["Resource"] != "*"
                parts = statement["Resource"]["Fn::Join"][1]
                assert parts[-1] == ":table/ic-tuning-dev-governance"  # no index/*, no table/*
                assert not any(a.endswith("*") for a in actions)
                assert not {"dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:BatchWriteItem"} & set(actions)
    assert len(granted) == 3  # Admit, Release, StopOrphans: no other function touches the table


def test_both_admissions_wait_on_a_task_token_for_at_most_the_queue_wait(states: dict) -> None:
    for name, phase in (("AdmitTraining", "training"), ("AdmitEvaluation", "evaluation")):
        state = states[name]
        assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
        assert state["TimeoutSeconds"] == DEV_QUEUE_WAIT
        assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
        assert state["Parameters"]["Payload"]["phase"] == phase
        assert state["ResultPath"] == f"$.admission.{phase}"


def test_a_queue_wait_that_runs_out_fails_the_run_with_a_notice_not_silently(states: dict) -> None:
    first, *rest = states["AdmitTraining"]["Catch"]
    assert first["ErrorEquals"] == ["States.Timeout"] and first["Next"] == "QueueWaitExpired"
    assert states["QueueWaitExpired"]["Parameters"]["Error"] == "QueueWaitExpired"
    assert "86,400 s (max_queue_wait_seconds)" in states["QueueWaitExpired"]["Parameters"]["Cause"]
    assert states["QueueWaitExpired"]["Next"] == "HandleFailure"
    assert [c["Next"] for c in rest] == ["HandleFailure"]
    # The evaluation's queue: the tuning is paid for, so its expiry registers the model unapproved.
    assert [c["Next"] for c in states["AdmitEvaluation"]["Catch"]] == ["EvaluationFailed"]


def test_slots_are_given_back_after_the_tuning_at_the_end_and_on_the_failure_path(states: dict) -> None:
    assert states["TuningDone?"]["Choices"][1]["Next"] == "ReleaseTraining"
    assert states["ReleaseTraining"]["Next"] == "ChooseBest"
    assert states["ReleaseTraining"]["Parameters"]["phase"] == "training"
    assert states["RegisterModel"]["Next"] == "ReleaseAndSettle"
    assert states["ReleaseAndSettle"]["Parameters"]["settle"] is True
    assert states["HandleFailure"]["Next"] == "ReleaseOnFailure"
    assert states["ReleaseOnFailure"]["Next"] == "NotifyFailure"
    # A release that fails for good does not fail the run: the cleanup and the reaper come back.
    for name, after in (("ReleaseTraining", "ChooseBest"), ("ReleaseAndSettle", "ComposeSuccess")):
        assert [c["Next"] for c in states[name]["Catch"]] == [after]
    assert "phase" not in states["ReleaseAndSettle"]["Parameters"]


def test_the_reaper_runs_the_cleanup_every_five_minutes(pipeline: Template) -> None:
    rules = pipeline.find_resources("AWS::Events::Rule", {"Properties": {"ScheduleExpression": "rate(5 minutes)"}})
    (rule,) = rules.values()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("StopOrphans")


def test_an_alarm_per_instance_type_fires_after_the_deployments_queue_limit(pipeline: Template) -> None:
    for instance_type in ("ml.g4dn.xlarge", "ml.m5.xlarge"):
        pipeline.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": "OldestQueuedSeconds",
                "Dimensions": Match.array_with([{"Name": "InstanceType", "Value": instance_type}]),
                "Threshold": DEV_ALARM,
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmActions": [{"Ref": Match.string_like_regexp("Notifications")}],
            },
        )


def test_the_dashboard_shows_slots_in_use_and_queue_depth(pipeline: Template) -> None:
    (dashboard,) = pipeline.find_resources("AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    assert "SlotsInUse" in body and "QueueDepth" in body and "OldestQueuedSeconds" in body


def test_the_functions_get_the_capacity_and_the_budget_of_the_deployment(pipeline: Template) -> None:
    pipeline.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handlers.admit.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "GOVERNANCE_TABLE": "ic-tuning-dev-governance",
                        "CAPACITY": '{"ml.g4dn.xlarge":4,"ml.m5.xlarge":2}',
                        "MONTHLY_BUDGET_USD": "1000.0",
                    }
                )
            },
        },
    )


def environment(**block: object) -> dict:
    context = cdk_context()
    context["environments"]["dev"] = {**context["environments"]["dev"], **block}
    return context


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"capacity": {"ml.g4dn.xlarge": 4}}, "no slots for ml.m5.xlarge"),
        ({"capacity": {"ml.g4dn.xlarge": 0, "ml.m5.xlarge": 1}}, "the slots runs may hold at once (1-1000)"),
        ({"capacity": {"g4dn": 2}}, "must map instance types"),
        ({"monthly_budget_usd": 0}, "positive number of US dollars or null"),
        ({"monthly_budget_usd": True}, "positive number of US dollars or null"),
        ({"max_queue_wait_seconds": 30}, "from 60 to 2592000"),
        ({"queue_alarm_seconds": 3.5}, "from 60 to 2592000"),
    ],
)
def test_governance_keys_are_checked_with_the_key_named(block: dict, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(environment(**block), "dev")
    assert f"environments.dev: key '{next(iter(block))}'" in str(refused.value) and words in str(refused.value)


def test_without_a_capacity_one_run_at_a_time_and_the_queue_wait_is_in_the_timeout() -> None:
    dev = cdk_context()["environments"]["dev"]
    config = load_config(environment(capacity=None), "dev")
    assert config.governance.capacity == {"ml.g4dn.xlarge": dev["tuning"]["max_parallel_jobs"], "ml.m5.xlarge": 1}
    shorter = load_config(environment(max_queue_wait_seconds=DEV_QUEUE_WAIT - 100), "dev")
    # Two waits: for the training slots and for the transform's.
    assert load_config(environment(), "dev").workflow_timeout_seconds - shorter.workflow_timeout_seconds == 200
