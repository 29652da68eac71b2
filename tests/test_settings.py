"""TuningSettings: each key's value as the schema and the rules across keys allow it."""

from __future__ import annotations

import pytest

from pipeline.aws.errors import SettingsError
from pipeline.settings.tuning_settings import TuningSettings


@pytest.mark.parametrize(("value", "expected"), [(None, None), (120, 120), (7200, 7200)])
def test_max_wait_is_optional_and_at_least_two_minutes(value: int | None, expected: int | None) -> None:
    assert TuningSettings.from_mapping({"max_wait_seconds": value}, where="t").max_wait_seconds == expected


@pytest.mark.parametrize(("value", "message"), [(119, "must be >= 120, got 119"), ("7200", "must be an integer")])
def test_a_bad_max_wait_names_the_key(value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=f"t: key 'max_wait_seconds' {message}"):
        TuningSettings.from_mapping({"max_wait_seconds": value}, where="t")


def test_the_algorithm_rules_across_keys_say_which_rule_and_what_to_do() -> None:
    import dataclasses

    def refusal(**keys: object) -> str:
        with pytest.raises(SettingsError) as refused:
            dataclasses.replace(TuningSettings(), **keys).check("m")
        return str(refused.value)

    # CreateHyperParameterTuningJob: Auto early stopping is not allowed with TrainingJobDefinitions.
    assert refusal(layout="definitions", early_stopping="Auto") == (
        "m: key 'early_stopping' must be 'Off' with layout 'definitions': SageMaker does not allow "
        "TrainingJobEarlyStoppingType=Auto with TrainingJobDefinitions. Use layout 'job_per_optimizer' to keep "
        "early stopping."
    )
    # Hyperband stops jobs itself: early stopping must be Off, whatever the layout.
    assert refusal(layout="flat", strategy="Hyperband", early_stopping="Auto") == (
        "m: key 'early_stopping' must be 'Off' with strategy 'Hyperband' (Hyperband stops jobs itself)."
    )
    assert refusal(price_per_hour_usd=1.0, allowed_instance_types=("ml.g4dn.xlarge", "ml.g5.xlarge")) == (
        "m: key 'price_per_hour_usd' prices one instance type, but allowed_instance_types lists 2: a manifest "
        "could pick a dearer one at this price. Remove price_per_hour_usd (the price table covers every known "
        "type) or allow one instance type."
    )
