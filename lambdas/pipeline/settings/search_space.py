"""The search space of the seed, as data: the one place every other module reads it from.

Source: SageMaker developer guide, "Tune an image classification model" (the seed) and
"Image classification hyperparameters" (which optimizer reads which hyperparameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

OBJECTIVE_METRIC = "validation:accuracy"
OBJECTIVE_TYPE: Final = "Maximize"

RangeKind = Literal["Continuous", "Integer", "Categorical"]
Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]
SCALING_TYPES: tuple[Scaling, ...] = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "rmsprop", "nag")
# Short forms for tuning job names (32 characters at most): "rmsprop" would waste four.
OPTIMIZER_CODES: dict[str, str] = {"sgd": "sgd", "adam": "adam", "rmsprop": "rms", "nag": "nag"}


@dataclass(frozen=True)
class NumericRange:
    name: str
    kind: Literal["Continuous", "Integer"]
    min_value: float
    max_value: float
    scaling: Scaling = "Auto"


# The documented table ("Tune an image classification model"), bounds and types exactly as published.
DOCUMENTED_RANGES: dict[str, NumericRange] = {
    r.name: r
    for r in (
        NumericRange("beta_1", "Continuous", 1e-6, 0.999),
        NumericRange("beta_2", "Continuous", 1e-6, 0.999),
        NumericRange("eps", "Continuous", 1e-8, 1.0),
        NumericRange("gamma", "Continuous", 1e-8, 0.999),
        NumericRange("learning_rate", "Continuous", 1e-6, 0.5),
        NumericRange("mini_batch_size", "Integer", 8, 512),
        NumericRange("momentum", "Continuous", 0.0, 0.999),
        NumericRange("weight_decay", "Continuous", 0.0, 0.999),
    )
}

# The default ranges, chosen by measurement (bench/, README "Choosing the defaults"): the documented
# table with one change. weight_decay starts at 1e-6 instead of 0.0 so that it can be searched
# on a log scale: linear on 0..0.999 put ~99% of draws above 0.01, where sgd and nag do not
# train, and the benchmark's share of near-chance jobs fell with log scaling. Every other
# range, bound and scaling is the documented table's (log-scaled learning_rate measured worse).
MEASURED_RANGES: dict[str, NumericRange] = {
    **DOCUMENTED_RANGES,
    "weight_decay": NumericRange("weight_decay", "Continuous", 1e-6, 0.999, "Logarithmic"),
}

# Named starting points for the ranges. "documented" is the page's table, exactly as documented.
PRESETS: dict[str, dict[str, NumericRange]] = {"measured": MEASURED_RANGES, "documented": DOCUMENTED_RANGES}
DEFAULT_PRESET = "measured"

# Which optimizer reads which hyperparameter ("Image classification hyperparameters" page).
# learning_rate and mini_batch_size are read by every optimizer.
COMMON_HYPERPARAMETERS: tuple[str, ...] = ("learning_rate", "mini_batch_size")
OPTIMIZER_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "weight_decay"),
    "nag": ("momentum", "weight_decay"),
    "adam": ("beta_1", "beta_2", "eps"),
    "rmsprop": ("gamma", "eps"),
}


def hyperparameters_read_by(optimizer: str) -> tuple[str, ...]:
    """Tunable hyperparameters the given optimizer reads, in the documented table's order."""
    reads = set(COMMON_HYPERPARAMETERS) | set(OPTIMIZER_HYPERPARAMETERS[optimizer])
    return tuple(name for name in DOCUMENTED_RANGES if name in reads)


def scaling_error(kind: str, scaling: str, min_value: float, max_value: float) -> str | None:
    """Why the API would reject this scaling for these bounds, or None when it is allowed."""
    if scaling not in SCALING_TYPES:
        return f"scaling must be one of {', '.join(SCALING_TYPES)}"
    if scaling == "Logarithmic" and min_value <= 0:
        return "Logarithmic scaling needs min > 0 (use a small positive min such as 1e-6, or Linear)"
    if scaling == "ReverseLogarithmic":
        if kind != "Continuous":
            return "ReverseLogarithmic scaling is only allowed on Continuous ranges"
        if not (0 <= min_value and max_value < 1):
            return "ReverseLogarithmic scaling needs 0 <= min and max < 1"
    return None
