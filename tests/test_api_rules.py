"""The strict checker's documented cross-field rules, one negative case each.

Every case starts from a request the checker accepts and breaks exactly one rule; the checker
and the local SageMaker (which runs the same checks on every call) must both refuse it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from local.api_model import request_errors
from local.sagemaker.base import ApiError
from local.sagemaker.service import LocalSageMaker
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import run_id
from pipeline.tuning.request import build_tuning_requests
from tests.sample_request import DATA, DEST

pytestmark = pytest.mark.standin

RUN = run_id("ds", "digits", "v1")
OP = "CreateHyperParameterTuningJob"


def request(layout: str, **changes: Any) -> dict[str, Any]:
    if layout == "job_per_optimizer":
        changes.setdefault("max_parallel_jobs", 4)
    settings = dataclasses.replace(
        TuningSettings.from_mapping({"preset": "documented"}, where="t"), layout=layout, **changes
    )
    (first, *_) = build_tuning_requests(RUN, settings, DATA, DEST)
    return copy.deepcopy(first)


def flat_ranges(r: dict[str, Any]) -> dict[str, Any]:
    return r["HyperParameterTuningJobConfig"]["ParameterRanges"]


def continuous(r: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in flat_ranges(r)["ContinuousParameterRanges"] if x["Name"] == name)


def _min_above_max(r: dict[str, Any]) -> None:
    continuous(r, "learning_rate").update(MinValue="0.5", MaxValue="0.1")


def _non_numeric(r: dict[str, Any]) -> None:
    continuous(r, "learning_rate")["MaxValue"] = "half"


def _log_from_zero(r: dict[str, Any]) -> None:
    continuous(r, "momentum").update(MinValue="0.0", ScalingType="Logarithmic")


def _reverse_log_to_one(r: dict[str, Any]) -> None:
    continuous(r, "eps").update(MaxValue="1.0", ScalingType="ReverseLogarithmic")


def _fractional_integer(r: dict[str, Any]) -> None:
    flat_ranges(r)["IntegerParameterRanges"][0]["MinValue"] = "8.5"


def _both_definition_kinds(r: dict[str, Any]) -> None:
    r["TrainingJobDefinitions"] = [copy.deepcopy(r["TrainingJobDefinition"])]


def _neither_definition_kind(r: dict[str, Any]) -> None:
    del r["TrainingJobDefinition"]


def _optimizer_static_and_tuned(r: dict[str, Any]) -> None:
    r["TrainingJobDefinition"]["StaticHyperParameters"]["optimizer"] = "sgd"


def _wait_below_runtime(r: dict[str, Any]) -> None:
    r["TrainingJobDefinition"]["StoppingCondition"] = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 1800}
    r["TrainingJobDefinition"]["EnableManagedSpotTraining"] = True
    r["TrainingJobDefinition"]["CheckpointConfig"] = {"S3Uri": "s3://art/checkpoints/x/"}


def _spot_without_wait(r: dict[str, Any]) -> None:
    r["TrainingJobDefinition"]["EnableManagedSpotTraining"] = True


def _hyperband_with_early_stopping(r: dict[str, Any]) -> None:
    config = r["HyperParameterTuningJobConfig"]
    config.update(Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto")
    config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 30}}


def _grid_with_numeric_ranges(r: dict[str, Any]) -> None:
    r["HyperParameterTuningJobConfig"]["Strategy"] = "Grid"


def _parallel_above_total(r: dict[str, Any]) -> None:
    r["HyperParameterTuningJobConfig"]["ResourceLimits"].update(MaxNumberOfTrainingJobs=2, MaxParallelTrainingJobs=3)


def _warm_start_from_itself(r: dict[str, Any]) -> None:
    name = r["HyperParameterTuningJobName"]
    r["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": name}],
        "WarmStartType": "TransferLearning",
    }


def _no_objective(r: dict[str, Any]) -> None:
    del r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]


FLAT_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "MinValue > MaxValue": (_min_above_max, "greater than MaxValue"),
    "non-numeric bound": (_non_numeric, "must be numbers"),
    "Logarithmic from 0": (_log_from_zero, "Logarithmic scaling needs values greater than 0"),
    "ReverseLogarithmic up to 1": (_reverse_log_to_one, "ReverseLogarithmic scaling needs 0 <= values < 1"),
    "fractional Integer bound": (_fractional_integer, "whole-number bounds"),
    "both definition kinds": (_both_definition_kinds, "exactly one of TrainingJobDefinition"),
    "neither definition kind": (_neither_definition_kind, "exactly one of TrainingJobDefinition"),
    "optimizer static and tuned": (_optimizer_static_and_tuned, "optimizer both static and tuned"),
    "MaxWait < MaxRuntime": (_wait_below_runtime, "MaxWaitTimeInSeconds 1800 is less than MaxRuntimeInSeconds 3600"),
    "spot without MaxWait": (_spot_without_wait, "needs StoppingCondition.MaxWaitTimeInSeconds"),
    "Hyperband with early stopping": (_hyperband_with_early_stopping, "requires TrainingJobEarlyStoppingType 'Off'"),
    "Grid with numeric ranges": (_grid_with_numeric_ranges, "categorical ranges only"),
    "parallel above total": (_parallel_above_total, "MaxParallelTrainingJobs 3 is greater"),
    "warm start from itself": (_warm_start_from_itself, "cannot warm start from itself"),
    "no objective": (_no_objective, "HyperParameterTuningJobObjective is required"),
}


def _definitions_early_stopping(r: dict[str, Any]) -> None:
    r["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto"


def _definitions_warm_start(r: dict[str, Any]) -> None:
    r["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "older-run"}],
        "WarmStartType": "TransferLearning",
    }


def _definitions_duplicate_name(r: dict[str, Any]) -> None:
    r["TrainingJobDefinitions"][1]["DefinitionName"] = r["TrainingJobDefinitions"][0]["DefinitionName"]


def _definitions_ranges_in_config(r: dict[str, Any]) -> None:
    r["HyperParameterTuningJobConfig"]["ParameterRanges"] = r["TrainingJobDefinitions"][0]["HyperParameterRanges"]


def _definitions_min_above_max(r: dict[str, Any]) -> None:
    lr = next(
        x
        for x in r["TrainingJobDefinitions"][2]["HyperParameterRanges"]["ContinuousParameterRanges"]
        if x["Name"] == "learning_rate"
    )
    lr.update(MinValue="0.4", MaxValue="0.3")


DEFINITIONS_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "early stopping Auto": (_definitions_early_stopping, "'Auto' is not supported with TrainingJobDefinitions"),
    "warm start": (_definitions_warm_start, "WarmStartConfig is not supported with TrainingJobDefinitions"),
    "duplicate DefinitionName": (_definitions_duplicate_name, "DefinitionName values must be unique"),
    "ranges in the config": (_definitions_ranges_in_config, "belong in each definition"),
    "MinValue > MaxValue in the third definition": (_definitions_min_above_max, "TrainingJobDefinitions[2]"),
}


@pytest.mark.parametrize("layout", ["flat", "definitions", "job_per_optimizer"])
def test_the_requests_we_build_pass_every_rule(layout: str) -> None:
    assert request_errors("sagemaker", OP, request(layout)) == []
    assert request_errors("sagemaker", OP, request(layout, use_spot=True)) == []


@pytest.mark.parametrize("case", sorted(FLAT_CASES))
def test_the_checker_refuses_a_flat_request_that_breaks_a_rule(case: str) -> None:
    breaks, expected = FLAT_CASES[case]
    r = request("flat")
    breaks(r)
    errors = "\n".join(request_errors("sagemaker", OP, r))
    assert expected in errors


@pytest.mark.parametrize("case", sorted(DEFINITIONS_CASES))
def test_the_checker_refuses_a_definitions_request_that_breaks_a_rule(case: str) -> None:
    breaks, expected = DEFINITIONS_CASES[case]
    r = request("definitions")
    breaks(r)
    errors = "\n".join(request_errors("sagemaker", OP, r))
    assert expected in errors


def test_the_checker_enforces_the_models_numeric_max() -> None:
    r = request("flat")
    r["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 15_768_001
    errors = "\n".join(request_errors("sagemaker", OP, r))
    assert "15768001 > max 15768000" in errors
    r["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 15_768_000
    assert request_errors("sagemaker", OP, r) == []


@pytest.mark.parametrize("case", ["MinValue > MaxValue", "optimizer static and tuned", "MaxWait < MaxRuntime"])
def test_the_local_sagemaker_refuses_what_the_checker_refuses(case: str) -> None:
    breaks, expected = FLAT_CASES[case]
    r = request("flat")
    breaks(r)
    sagemaker = LocalSageMaker(s3_client=lambda: None)
    with pytest.raises(ApiError) as raised:
        sagemaker.call(OP, r)
    assert raised.value.code == "ValidationException"
    assert expected in raised.value.message
    assert sagemaker.tuning_jobs == {}


def test_a_fake_client_refuses_what_the_real_client_would_refuse() -> None:
    from tests.fakes import Fake

    class Jobs(Fake):
        def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
            return {"TransformJobStatus": "Completed"}

        def get_paginator(self, operation: str) -> Any:
            return self

        def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
            return []

    jobs = Jobs()
    assert jobs.describe_transform_job(TransformJobName="run-test") == {"TransformJobStatus": "Completed"}
    with pytest.raises(AssertionError, match="TransformJobName"):
        jobs.describe_transform_job(TransformJobName=None)
    with pytest.raises(AssertionError, match="TransformJobName"):
        jobs.describe_transform_job()
    pages = jobs.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    assert pages.paginate(HyperParameterTuningJobName="run", PaginationConfig={"PageSize": 100}) == []
    # ListTrainingJobsForHyperParameterTuningJob: MaxResults 1-100 (SageMaker API reference).
    with pytest.raises(AssertionError, match="MaxResults: 101 > max 100"):
        pages.paginate(HyperParameterTuningJobName="run", PaginationConfig={"PageSize": 101})
    with pytest.raises(AssertionError, match="unknown PaginationConfig"):
        pages.paginate(HyperParameterTuningJobName="run", PaginationConfig={"Pagesize": 100})
