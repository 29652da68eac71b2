"""Configuration from cdk.json: valid environments load, invalid ones fail synth with the key named."""

from __future__ import annotations

import copy
import json

import pytest

from stacks.config import ConfigError, load_config
from tests.conftest import cdk_context


def with_tuning(**overrides) -> dict:
    context = copy.deepcopy(cdk_context())
    context["environments"]["dev"]["tuning"].update(overrides)
    return context


@pytest.mark.parametrize("env", ["dev", "local", "prod"])
def test_shipped_environments_load(env: str) -> None:
    config = load_config(cdk_context(), env)
    assert config.env_name == env
    assert config.production is (env == "prod")
    assert config.retain_data is config.production


def test_production_must_be_said_not_guessed_from_the_name() -> None:
    context = copy.deepcopy(cdk_context())
    del context["environments"]["prod"]["production"]
    with pytest.raises(ConfigError, match=r"environments.prod: key 'production' must be true or false, got None"):
        load_config(context, "prod")


@pytest.mark.parametrize(("name", "production"), [("staging", True), ("prod-eu", False)])
def test_a_third_environment_keeps_its_data_by_its_production_setting_not_its_name(
    name: str, production: bool, tmp_path
) -> None:
    from aws_cdk import App

    from stacks.app_builder import build

    context = copy.deepcopy(cdk_context())
    block = copy.deepcopy(context["environments"]["dev"])
    block.pop("log_retention_days")
    context["environments"][name] = {**block, "production": production}
    app = App(context=context, outdir=str(tmp_path))
    built = build(app, env_name=name)
    app.synth()  # cdk-nag runs here too
    storage = json.loads((tmp_path / f"{built.storage.stack_name}.template.json").read_text())["Resources"]
    buckets = [r for r in storage.values() if r["Type"] == "AWS::S3::Bucket"]
    assert {b["DeletionPolicy"] for b in buckets} == {"Retain" if production else "Delete"}
    pipeline = json.loads((tmp_path / f"{built.pipeline.stack_name}.template.json").read_text())["Resources"]
    retention = {r["Properties"]["RetentionInDays"] for r in pipeline.values() if r["Type"] == "AWS::Logs::LogGroup"}
    assert retention == {365 if production else 30}


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"environment 'staging' is not defined.*dev, local, prod"):
        load_config(cdk_context(), "staging")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instance_type": "ml.m5.xlarge"}, r"key 'instance_type' must be a GPU training instance type"),
        ({"strategy": "Genetic"}, r"key 'strategy' must be one of Bayesian, Random, Hyperband, Grid"),
        ({"layout": "nested"}, r"key 'layout' must be one of definitions, job_per_optimizer, flat"),
        (
            {"max_parallel_jobs": 30, "max_training_jobs": 20},
            r"'max_parallel_jobs' \(30\) is greater than 'max_training_jobs' \(20\)",
        ),
        ({"max_runtime_seconds": 60}, r"key 'max_runtime_seconds' must be between 120 and 2419200"),
        ({"early_stopping": "Auto"}, r"'early_stopping' must be 'Off' with layout 'definitions'"),
        ({"num_layers": 19}, r"key 'num_layers' must be one of 18, 34, 50, 101, 152, 200"),
        ({"image_shape": "224,224"}, r"key 'image_shape' must look like '3,224,224'"),
        ({"epochs": "30"}, r"key 'epochs' must be an integer"),
        (
            {"ranges": {"learning_rate": {"min": 0.0, "scaling": "Logarithmic"}}},
            r"key 'ranges.learning_rate': Logarithmic scaling needs min > 0",
        ),
        (
            {"ranges": {"momentum": {"max": 1.0, "scaling": "ReverseLogarithmic"}}},
            r"ReverseLogarithmic scaling needs 0 <= min and max < 1",
        ),
        ({"ranges": {"mini_batch_size": {"min": 8.5}}}, r"Integer range, bounds must be whole numbers"),
        ({"ranges": {"learning_rate": {"min": 0.5, "max": 0.1}}}, r"min \(0.5\) must be less than max \(0.1\)"),
        ({"ranges": {"optimizer": {"min": 1}}}, r"not a tunable numeric hyperparameter"),
        ({"completion": {"max_jobs_not_improving": 2}}, r"key 'completion.max_jobs_not_improving' must be >= 3"),
        ({"approval": {"mode": "yolo"}}, r"key 'approval.mode' must be one of manual, auto"),
        (
            {"use_spot": True, "max_wait_seconds": 600, "max_runtime_seconds": 3600},
            r"'max_wait_seconds' \(600\) must be >= 'max_runtime_seconds'",
        ),
        ({"colour": "blue"}, r"unknown key\(s\) colour"),
    ],
)
def test_invalid_tuning_setting_names_the_key_and_the_allowed_values(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        load_config(with_tuning(**overrides), "dev")
    assert "cdk.json context environments.dev.tuning" in str(error.value)


def test_invalid_email_is_rejected() -> None:
    context = copy.deepcopy(cdk_context())
    context["environments"]["dev"]["notification_email"] = "not-an-address"
    with pytest.raises(ConfigError, match="key 'notification_email' must be an e-mail address"):
        load_config(context, "dev")


def test_timeout_covers_the_worst_case_tuning_time() -> None:
    config = load_config(
        with_tuning(max_training_jobs=10, max_parallel_jobs=2, max_runtime_seconds=1800, use_spot=False), "dev"
    )
    # the wait for training slots (max_queue_wait_seconds, 86,400 in dev); waves, two polls; the
    # wait for the transform's slot, the test evaluation's limit (evaluation_max_seconds) and its
    # two polls; slack
    assert config.workflow_timeout_seconds == 86_400 + 5 * 1800 + 2 * 60 + 86_400 + 3600 + 2 * 60 + 3600


def test_training_vpc_is_validated() -> None:
    context = copy.deepcopy(cdk_context())
    context["environments"]["dev"]["training_vpc"] = {
        "subnet_ids": ["subnet-12"],
        "security_group_ids": ["sg-0123abcd"],
    }
    with pytest.raises(ConfigError, match=r"key 'training_vpc'.subnet_ids must list 1-16 subnet ids"):
        load_config(context, "dev")
    context["environments"]["dev"]["training_vpc"] = {
        "subnet_ids": ["subnet-0123abcd"],
        "security_group_ids": ["sg-0123abcd"],
    }
    assert load_config(context, "dev").training_vpc == {
        "Subnets": ["subnet-0123abcd"],
        "SecurityGroupIds": ["sg-0123abcd"],
    }


def test_a_vpc_deployment_synthesizes_clean_with_eni_permissions_for_sagemaker_only() -> None:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from stacks.app_builder import build

    context = copy.deepcopy(cdk_context())
    context["environments"]["dev"]["training_vpc"] = {
        "subnet_ids": ["subnet-0123abcd"],
        "security_group_ids": ["sg-0123abcd"],
    }
    app = App(context=context)
    built = build(app, env_name="dev")
    app.synth()  # cdk-nag must stay clean
    policies = Template.from_stack(built.pipeline).find_resources("AWS::IAM::Policy")
    with_eni = [lid for lid, p in policies.items() if "ec2:CreateNetworkInterface" in str(p)]
    assert len(with_eni) == 1 and with_eni[0].startswith("SageMakerExecutionRole")
    start = Template.from_stack(built.pipeline).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "handlers.start_tuning.handler"}}
    )
    (function,) = start.values()
    assert json.loads(function["Properties"]["Environment"]["Variables"]["TRAINING_VPC"]) == {
        "Subnets": ["subnet-0123abcd"],
        "SecurityGroupIds": ["sg-0123abcd"],
    }


def test_production_data_cannot_be_set_to_be_deleted() -> None:
    context = copy.deepcopy(cdk_context())
    context["environments"]["prod"]["retain_data"] = False
    with pytest.raises(ConfigError, match="'retain_data' is false but 'production' is true"):
        load_config(context, "prod")


@pytest.mark.parametrize(
    ("key", "old", "new"), [("layout", "jobs", "job_per_optimizer"), ("preset", "seed", "documented")]
)
def test_a_renamed_value_is_refused_with_its_new_name(key: str, old: str, new: str) -> None:
    from pipeline.aws.errors import SettingsError
    from pipeline.settings.tuning_settings import TuningSettings

    with pytest.raises(SettingsError) as raised:
        TuningSettings.from_mapping({key: old}, where="m")
    assert str(raised.value) == f"m: key '{key}': '{old}' was renamed to '{new}'. Use '{new}'."
