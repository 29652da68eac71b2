"""Per-optimizer ranges: a definition per optimizer may search its own bounds (issue: a
learning-rate range for adam that is not sgd's). Expected bounds are the ones written in the
settings below, and the documented table (the seed document) for everything they leave alone."""

from __future__ import annotations

from typing import Any

import pytest

from local.api_model import request_errors
from pipeline.aws.errors import SettingsError
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.request import build_tuning_requests
from tests.oracles import seed_table
from tests.sample_request import DATA, DEST

OWN = {"sgd": {"learning_rate": {"max": 0.1}, "weight_decay": {"max": 0.01}}, "rmsprop": {"eps": {"min": 0.01}}}


def bounds(ranges: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {
        r["Name"]: (float(r["MinValue"]), float(r["MaxValue"]))
        for key in ("ContinuousParameterRanges", "IntegerParameterRanges")
        for r in ranges.get(key, [])
    }


def test_each_definition_searches_its_optimizers_own_bounds_and_the_documented_rest() -> None:
    settings = TuningSettings.from_mapping({"preset": "documented", "optimizer_ranges": OWN}, where="t")
    (request,) = build_tuning_requests("r-0123456789", settings, DATA, DEST)
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []
    table = seed_table().ranges
    by_name = {d["DefinitionName"]: bounds(d["HyperParameterRanges"]) for d in request["TrainingJobDefinitions"]}
    assert by_name["sgd"]["learning_rate"] == (table["learning_rate"].min_value, 0.1)
    assert by_name["sgd"]["weight_decay"] == (table["weight_decay"].min_value, 0.01)
    assert by_name["rmsprop"]["eps"] == (0.01, table["eps"].max_value)
    assert by_name["adam"]["learning_rate"] == (table["learning_rate"].min_value, table["learning_rate"].max_value)
    assert by_name["nag"]["weight_decay"] == (table["weight_decay"].min_value, table["weight_decay"].max_value)
    assert by_name["adam"]["eps"] == (table["eps"].min_value, table["eps"].max_value)


def test_one_tuning_job_per_optimizer_carries_its_own_bounds_too() -> None:
    settings = TuningSettings.from_mapping(
        {"preset": "documented", "layout": "job_per_optimizer", "max_parallel_jobs": 4, "optimizer_ranges": OWN},
        where="t",
    )
    requests = {
        r["HyperParameterTuningJobName"]: r for r in build_tuning_requests("r-0123456789", settings, DATA, DEST)
    }
    assert all(request_errors("sagemaker", "CreateHyperParameterTuningJob", r) == [] for r in requests.values())
    sgd = [
        r for name, r in requests.items() if r["TrainingJobDefinition"]["StaticHyperParameters"]["optimizer"] == "sgd"
    ]
    (sgd_request,) = sgd
    assert bounds(sgd_request["HyperParameterTuningJobConfig"]["ParameterRanges"])["learning_rate"][1] == 0.1


def test_own_ranges_apply_over_the_runs_ranges_whatever_the_keys_order() -> None:
    first = TuningSettings.from_mapping(
        {"optimizer_ranges": {"sgd": {"learning_rate": {"max": 0.1}}}, "ranges": {"learning_rate": {"min": 1e-4}}},
        where="t",
    )
    second = TuningSettings.from_mapping(
        {"ranges": {"learning_rate": {"min": 1e-4}}, "optimizer_ranges": {"sgd": {"learning_rate": {"max": 0.1}}}},
        where="t",
    )
    assert first == second
    own = first.range_for("learning_rate", "sgd")
    assert (own.min_value, own.max_value) == (1e-4, 0.1)
    assert TuningSettings.from_mapping(first.to_dict(), where="t") == first  # the run's wire form keeps them


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        (
            {"layout": "flat", "optimizer_ranges": {"sgd": {"learning_rate": {"max": 0.1}}}},
            "m: key 'optimizer_ranges' needs a definition per optimizer, and layout 'flat' has one for all of them.",
        ),
        (
            {"optimizer_ranges": {"sgd": {"beta_1": {"max": 0.5}}}},
            "m: key 'optimizer_ranges.sgd': sgd does not read beta_1",
        ),
        (
            {"optimizers": ["adam"], "optimizer_ranges": {"sgd": {"learning_rate": {"max": 0.1}}}},
            "m: key 'optimizer_ranges' sets ranges for sgd, which this run does not tune (optimizers: adam).",
        ),
        (
            {"optimizer_ranges": {"adam": {"learning_rate": {"max": 1.5}}}},
            "m: key 'optimizer_ranges.adam.learning_rate': max (1.5) is outside learning_rate's valid values, 0 to 1",
        ),
    ],
)
def test_own_ranges_that_cannot_apply_are_refused_with_the_fix(tuning: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        TuningSettings.from_mapping(tuning, where="m")
    assert str(raised.value).startswith(message)
