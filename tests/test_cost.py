"""Cost guardrail: the worst case is known, shown and enforced before any GPU starts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.aws.errors import (
    BudgetExceeded,
)
from pipeline.settings import limits
from pipeline.settings.keys import GPU_FAMILIES
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.cost import Estimate, check_budget, hourly_price, price_table, worst_case


def test_the_price_table_has_its_date_source_and_every_default_instance() -> None:
    table = price_table()
    assert table["date"] and "pricing" in table["source"] and table["currency"] == "USD"
    assert all(name.startswith(GPU_FAMILIES) for name in table["prices"])
    assert TuningSettings().instance_type in table["prices"]


def test_worst_case_is_every_job_running_to_its_limit() -> None:
    settings = dataclasses.replace(
        TuningSettings(), instance_type="ml.p3.2xlarge", max_training_jobs=10, max_runtime_seconds=1800
    )
    estimate = worst_case(settings, "us-east-1")
    assert estimate.instance_hours == 5
    assert estimate.worst_case_usd == pytest.approx(5 * price_table()["prices"]["ml.p3.2xlarge"])


def test_spot_is_capped_at_the_on_demand_price_and_says_so() -> None:
    on_demand = worst_case(TuningSettings(), "us-east-1")
    spot = worst_case(dataclasses.replace(TuningSettings(), use_spot=True), "us-east-1")
    assert spot.worst_case_usd == on_demand.worst_case_usd  # savings are not guaranteed: not a worst case
    assert spot.basis == "us-east-1 list price of 2026-11-28, on-demand (spot can only cost less)"


def test_another_region_is_flagged_approximate_and_an_override_wins() -> None:
    assert "approximate" in worst_case(TuningSettings(), "eu-west-1").basis
    settings = dataclasses.replace(
        TuningSettings(), price_per_hour_usd=2.0, max_training_jobs=3, max_runtime_seconds=3600
    )
    estimate = worst_case(settings, "eu-west-1")
    assert estimate.worst_case_usd == 6.0 and estimate.basis == "tuning.price_per_hour_usd"


def test_a_run_above_budget_is_refused_with_what_to_lower() -> None:
    settings = TuningSettings.from_mapping({"max_cost_usd": 10, "max_training_jobs": 40}, where="test")
    with pytest.raises(BudgetExceeded) as error:
        check_budget(settings, "us-east-1", "s3://b/datasets/x/manifest.json")
    message = str(error.value)
    assert "worst-case cost $29.44 (40 training jobs x 3600 s x $0.736/h" in message
    assert "above max_cost_usd $10.00" in message
    assert "Lower tuning.max_training_jobs or tuning.max_runtime_seconds" in message
    assert "Nothing was started" in message


def test_within_budget_returns_the_estimate_for_the_execution_output() -> None:
    estimate = check_budget(TuningSettings.from_mapping({"max_cost_usd": 100}, where="t"), "us-east-1", "m")
    assert json.loads(json.dumps(estimate.to_dict()))["worst_case_usd"] == 14.72


def test_an_instance_without_a_price_needs_one() -> None:
    settings = dataclasses.replace(TuningSettings(), instance_type="ml.p3dn.24xlarge")
    table = dict(price_table()["prices"])
    assert "ml.p3dn.24xlarge" in table  # known; an unknown family member must be priced by hand:
    settings = dataclasses.replace(settings, instance_type="ml.g5.96xlarge")
    with pytest.raises(BudgetExceeded, match="set tuning.price_per_hour_usd"):
        worst_case(settings, "us-east-1")


def test_the_estimate_shown_in_the_execution_output() -> None:
    estimate = Estimate(worst_case_usd=29.4449, price_per_hour_usd=0.736, basis="b", instance_hours=40.004)
    assert estimate.to_dict() == {
        "worst_case_usd": 29.44,
        "price_per_hour_usd": 0.736,
        "instance_hours": 40.0,
        "basis": "b",
    }


def test_every_known_instance_type_has_a_price() -> None:
    assert set(limits.TRAINING_INSTANCES) == set(price_table()["prices"])


def test_the_price_basis_says_where_it_is_approximate() -> None:
    settings = TuningSettings()
    assert hourly_price(settings, "us-east-1") == (0.736, "us-east-1 list price of 2026-11-28")
    assert (
        hourly_price(settings, "eu-west-1")[1] == "us-east-1 list price of 2026-11-28 (run in eu-west-1: approximate)"
    )


def test_the_budget_refusal_in_full() -> None:
    settings = TuningSettings.from_mapping({"max_cost_usd": 10, "max_training_jobs": 20}, where="t")
    with pytest.raises(BudgetExceeded) as raised:
        check_budget(settings, "eu-west-1", "m")
    assert str(raised.value) == (
        "m: worst-case cost $14.72 (20 training jobs x 3600 s x $0.736/h, us-east-1 list price of 2026-11-28 "
        "(run in eu-west-1: approximate)) is above max_cost_usd $10.00. Lower tuning.max_training_jobs or "
        "tuning.max_runtime_seconds, pick a cheaper instance_type, or raise max_cost_usd in cdk.json. "
        "Nothing was started."
    )


def test_a_worst_case_exactly_at_the_cap_is_allowed_and_a_cent_below_is_not() -> None:
    # 10 jobs x 1 h x $2.00/h = $20.00 worst case.
    base = {"price_per_hour_usd": 2.0, "max_training_jobs": 10, "max_parallel_jobs": 2, "max_runtime_seconds": 3600}
    at_cap = TuningSettings.from_mapping({**base, "max_cost_usd": 20.0}, where="t")
    assert check_budget(at_cap, "us-east-1", "m").worst_case_usd == 20.0
    below = TuningSettings.from_mapping({**base, "max_cost_usd": 19.99}, where="t")
    with pytest.raises(BudgetExceeded, match=r"\$20.00 .* above max_cost_usd \$19.99"):
        check_budget(below, "us-east-1", "m")


def test_the_basis_of_a_run_with_a_test_split_names_the_price_and_the_transform() -> None:
    basis = worst_case(TuningSettings(), "us-east-1", evaluation=True).basis
    assert basis == "us-east-1 list price of 2026-11-28; with the test split's batch transform (ml.m5.xlarge)"
