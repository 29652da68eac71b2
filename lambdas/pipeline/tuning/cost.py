"""What a run can cost before it starts, and what it cost after: pure functions.

Prices come from `data/training-prices.json` (one place, with its date and source), or from
the setting `price_per_hour_usd`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.aws.errors import BudgetExceeded
from pipeline.settings.tuning_settings import TuningSettings

_PRICES = Path(__file__).parents[1] / "data" / "training-prices.json"
_TRANSFORM_PRICES = Path(__file__).parents[1] / "data" / "transform-prices.json"


@cache
def price_table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(_PRICES.read_text())
    return table


@dataclass(frozen=True)
class Estimate:
    worst_case_usd: float
    price_per_hour_usd: float
    basis: str
    instance_hours: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "worst_case_usd": round(self.worst_case_usd, 2),
            "price_per_hour_usd": self.price_per_hour_usd,
            "instance_hours": round(self.instance_hours, 2),
            "basis": self.basis,
        }


def hourly_price(settings: TuningSettings, region: str) -> tuple[float, str]:
    table = price_table()
    if settings.price_per_hour_usd is not None:
        price, basis = settings.price_per_hour_usd, "tuning.price_per_hour_usd"
    elif settings.instance_type in table["prices"]:
        price = table["prices"][settings.instance_type]
        basis = f"{table['region']} list price of {table['date']}" + (
            "" if region == table["region"] else f" (run in {region}: approximate)"
        )
    else:
        raise BudgetExceeded(
            f"no price known for {settings.instance_type}; set tuning.price_per_hour_usd in cdk.json so the "
            "run's worst-case cost can be checked before it starts"
        )
    if settings.use_spot:
        # A worst case, not a forecast: spot savings are not guaranteed, so the cap is checked
        # at the on-demand price (a manifest may turn spot on; it must not buy a looser cap).
        return price, f"{basis}, on-demand (spot can only cost less)"
    return price, basis


def transform_price(instance_type: str) -> float:
    """The hourly list price of a batch transform instance (`data/transform-prices.json`)."""
    prices: dict[str, float] = json.loads(_TRANSFORM_PRICES.read_text())["prices"]
    return prices[instance_type]


def evaluation_cost(settings: TuningSettings) -> float:
    """The test split's batch transform running to evaluation_max_seconds on its one instance."""
    return transform_price(settings.evaluation_instance_type) * settings.evaluation_max_seconds / 3600


def worst_case(settings: TuningSettings, region: str, *, evaluation: bool = False) -> Estimate:
    """Every training job running to its MaxRuntimeInSeconds (billed time cannot exceed it), and
    the test split's evaluation to its limit when the dataset has one."""
    price, basis = hourly_price(settings, region)
    hours = settings.max_training_jobs * settings.max_runtime_seconds / 3600
    total = hours * price
    if evaluation:
        total += evaluation_cost(settings)
        basis += f"; with the test split's batch transform ({settings.evaluation_instance_type})"
    return Estimate(worst_case_usd=total, price_per_hour_usd=round(price, 4), basis=basis, instance_hours=hours)


def check_budget(settings: TuningSettings, region: str, where: str, *, evaluation: bool = False) -> Estimate:
    estimate = worst_case(settings, region, evaluation=evaluation)
    budget = settings.max_cost_usd
    if budget is not None and estimate.worst_case_usd > budget:
        raise BudgetExceeded(
            f"{where}: worst-case cost ${estimate.worst_case_usd:,.2f} ({settings.max_training_jobs} training jobs x "
            f"{settings.max_runtime_seconds} s x ${estimate.price_per_hour_usd}/h, {estimate.basis}) is above "
            f"max_cost_usd ${budget:,.2f}. Lower tuning.max_training_jobs or tuning.max_runtime_seconds, "
            "pick a cheaper instance_type, or raise max_cost_usd in cdk.json. Nothing was started."
        )
    return estimate
