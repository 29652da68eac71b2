"""What each workflow step reads: one dataclass per step, whose fields are its payload's keys.

A field is named after what the workflow passes in it:
- a key of the workflow state (`run`, `tuning`, `best`, ...: `contract.STATE`), passed whole;
- `run_id` or `cost`: that field of `run`;
- `execution`, `started`, `token`: the execution's id, its start time, the task token;
- anything else (`phase`, `settle`): a constant the workflow writes into the task.

The step's construct (stacks/steps) builds its task's payload from these fields, and its handler
reads the event with `<Input>.parse(event)`: each key is spelled once, here. The steps that take
the whole state (ValidateDataset: the S3 event; HandleFailure: whatever failed) have no class.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Self

from pipeline.contract import BestJob, Cost, Evaluation, Registered, Run, Tested, Tuning
from pipeline.governance.admission import Admissions

# Fields that are a field of another step's result: (the state key, the field).
NESTED = {"run_id": ("run", "run_id"), "cost": ("run", "cost")}
# Fields the execution itself provides: where its context object holds each. (`token`, the task
# token, is passed as CDK's JsonPath.task_token, which also marks the task as waiting for it.)
EXECUTION_FACTS = {"execution": "$$.Execution.Id", "started": "$$.Execution.StartTime"}


def _read(kind: Any, value: Any) -> Any:
    """A wire value as the contract type `kind`; an optional one absent or empty is None."""
    if typing.get_origin(kind) in (types.UnionType, typing.Union):
        if not value:
            return None
        (kind,) = [k for k in typing.get_args(kind) if k is not type(None)]
    if hasattr(kind, "from_dict"):
        return kind.from_dict(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return kind(**value)
    return value


class StepInput:
    """Parsing shared by every step's input: each field read as its contract type."""

    @classmethod
    def parse(cls, event: dict[str, Any]) -> Self:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        return cls(**{f.name: _read(hints[f.name], event[f.name]) for f in fields if f.name in event})


@dataclass(frozen=True, kw_only=True)
class AdmitInput(StepInput):
    run: Run
    execution: str
    started: str
    token: str
    phase: str


@dataclass(frozen=True, kw_only=True)
class StartTuningInput(StepInput):
    run: Run
    execution: str


@dataclass(frozen=True, kw_only=True)
class PollTuningInput(StepInput):
    run_id: str
    tuning: Tuning


@dataclass(frozen=True, kw_only=True)
class ChooseBestInput(StepInput):
    run_id: str
    tuning: Tuning
    cost: Cost | None = None


@dataclass(frozen=True, kw_only=True)
class StartEvaluationInput(StepInput):
    run: Run
    best: BestJob
    execution: str


@dataclass(frozen=True, kw_only=True)
class CheckEvaluationInput(StepInput):
    run: Run
    evaluation: Evaluation


@dataclass(frozen=True, kw_only=True)
class RegisterModelInput(StepInput):
    run: Run
    tuning: Tuning
    best: BestJob
    tested: Tested | None = None


@dataclass(frozen=True, kw_only=True)
class ComposeSuccessInput(StepInput):
    run: Run
    tuning: Tuning | None = None
    admission: Admissions | None = None
    best: BestJob
    registered: Registered
    tested: Tested | None = None


@dataclass(frozen=True, kw_only=True)
class ReleaseInput(StepInput):
    execution: str
    started: str
    phase: str | None = None
    settle: bool = False
