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
