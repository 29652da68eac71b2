"""The value checks every setting's parser is built from, and the error they raise."""

from __future__ import annotations

import math
from typing import Any

from pipeline.aws.errors import SettingsError


def sub(key: str, name: str) -> str:
    """ "...: key 'ranges'" + "learning_rate" -> "...: key 'ranges.learning_rate'"."""
    return f"{key[:-1]}.{name}'" if key.endswith("'") else f"{key}.{name}"


def integer(value: Any, key: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{key} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise SettingsError(f"{key} must be {bound}, got {value}")
    return value


def number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingsError(f"{key} must be a number, got {value!r}")
    return float(value)


def flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{key} must be true or false, got {value!r}")
    return value


def choice(value: Any, key: str, allowed: tuple[Any, ...]) -> Any:
    # Same type too: 18.0 == 18, but the algorithm would receive "18.0".
    if value not in allowed or isinstance(value, bool) or not any(type(value) is type(a) for a in allowed):
        shown = ", ".join(str(a) for a in allowed)
        raise SettingsError(f"{key} must be one of {shown}, got {value!r}")
    return value


# Values renamed before the first release, named in the error so an old manifest is easy to fix.
RENAMED = {"jobs": "job_per_optimizer", "seed": "documented"}


def choose(value: Any, key: str, allowed: tuple[Any, ...]) -> Any:
    """`choice`, naming the new name of a renamed value."""
    if isinstance(value, str) and RENAMED.get(value) in allowed:
        raise SettingsError(f"{key}: {value!r} was renamed to {RENAMED[value]!r}. Use {RENAMED[value]!r}.")
    return choice(value, key, allowed)


def positive(value: Any, key: str) -> float:
    amount = number(value, key)
    if amount <= 0:
        raise SettingsError(f"{key} must be a positive number, got {value!r}")
    return amount
