"""Expected values from outside the code under test: the seed document and the documented facts.

Nothing here imports `pipeline` or `stacks`. A test that compares the product with these
tables fails when the product drifts from its sources, not when it agrees with itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The seed, the original page (in Spanish) as the project received it, kept in the repository with
# its transcription of the algorithm's documented facts (docs/reference/DOMAIN.md).
REFERENCE = ROOT / "docs" / "reference"
SEED_DOCUMENT = REFERENCE / "seed-tune-image-classification.es.txt"

_KINDS = {"ContinuousParameterRanges": "Continuous", "IntegerParameterRanges": "Integer"}
# Numbers as the (machine-translated) page prints them: "1e-6", "0,999" (decimal comma), "1,0".
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class DocumentedRange:
    name: str
    kind: str
    min_value: float
    max_value: float


@dataclass(frozen=True)
class SeedTable:
    objective_metric: str
    objective_direction: str
    ranges: dict[str, DocumentedRange]
    optimizers: tuple[str, ...]


def _number(text: str) -> float:
    return float(text.replace(",", "."))


@cache
def seed_table() -> SeedTable:
    """The table of "Tune an image classification model" (the seed), read from the document."""
    if not SEED_DOCUMENT.exists():
        raise AssertionError(f"{SEED_DOCUMENT} is missing: the seed oracle reads the original page.")
    lines = [line.strip() for line in SEED_DOCUMENT.read_text(encoding="utf-8").splitlines() if line.strip()]
    metric_at = lines.index("validation:accuracy")
    direction = lines[metric_at + 2]  # the description line sits between the name and the direction
    start = next(i for i, line in enumerate(lines) if line.startswith("Nombre del parámetro"))
    ranges: dict[str, DocumentedRange] = {}
    optimizers: tuple[str, ...] = ()
    rows = lines[start + 1 :]
    for name, kind, bounds in zip(rows[0::3], rows[1::3], rows[2::3], strict=False):
        if kind == "CategoricalParameterRanges":
            optimizers = tuple(re.findall(r"[a-z]+", bounds))
            continue
        low, high = (_number(n) for n in _NUMBER.findall(bounds))
        ranges[name] = DocumentedRange(name, _KINDS[kind], low, high)
    return SeedTable("validation:accuracy", {"Maximizar": "Maximize"}[direction], ranges, optimizers)


# "Image classification hyperparameters" page (SageMaker developer guide), transcribed in
# docs/reference/DOMAIN.md sections 2 and 8.
SOURCE_HYPERPARAMETERS_PAGE = "SageMaker developer guide, 'Image classification hyperparameters'"
# Valid values: floats in [0, 1] for these; mini_batch_size a positive integer.
VALID_UNIT_INTERVAL = ("beta_1", "beta_2", "eps", "gamma", "learning_rate", "momentum", "weight_decay")
# Which optimizer reads which hyperparameter, beyond learning_rate and mini_batch_size (read by all).
OPTIMIZER_READS = {
    "sgd": {"momentum", "weight_decay"},
    "nag": {"momentum", "weight_decay"},
    "adam": {"beta_1", "beta_2", "eps"},
    "rmsprop": {"gamma", "eps"},
}
READ_BY_ALL = {"learning_rate", "mini_batch_size"}

# "Image classification algorithm" page: input formats, channels and content types.
SOURCE_ALGORITHM_PAGE = "SageMaker developer guide, 'Image classification algorithm'"
IMAGE_CHANNELS = ("train", "validation", "train_lst", "validation_lst")
IMAGE_CONTENT_TYPE = "application/x-image"
RECORDIO_CONTENT_TYPE = "application/x-recordio"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Step Functions developer guide, "Quotas": a Standard execution's history holds 25,000 events.
HISTORY_EVENTS_QUOTA = 25_000
# SageMaker API reference, StoppingCondition: MaxRuntimeInSeconds at most 28 days.
TRAINING_MAX_RUNTIME_SECONDS = 28 * 24 * 3600
# SageMaker developer guide, "Resource Limits for Automatic Model Tuning": a tuning job runs at
# most 30 days (not adjustable). The API reference accepts ResourceLimits.MaxRuntimeInSeconds up
# to 15,768,000 (182.5 days), but the service's limit is the page's.
TUNING_MAX_RUNTIME_SECONDS = 30 * 24 * 3600
