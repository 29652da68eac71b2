"""The run contract: what the workflow's steps hand to each other, typed.

Each step's result sits at one key of the workflow state (`STATE`); the state machine passes
those keys to the next steps (`stacks/constructs/workflow.py` builds its JSON paths with
`path()`, which refuses a field these classes do not have). Every handler reads its input with
`from_dict` and returns `to_dict()`; the dicts are the wire format (JSON in Step Functions), the
dataclasses are what the code works with.

    run         ValidateDataset   Run: the dataset, what validation learned, settings, schedule, cost
    admission   Admit             Admissions: the run's leases of slots, and how long it waited for them
    tuning      StartTuning       Tuning: the run's tuning job names and which this execution owns
    poll        PollTuning        Poll: overall status and a few counters per tuning job
    best        ChooseBest        BestJob: the best training job, its artifact, and the bill
    evaluation  StartEvaluation   Evaluation: the model and batch transform of the test split
    tested      CheckEvaluation   Tested: the transform's status, then the test accuracy (or the error)
    registered  RegisterModel     Registered: the model package and its approval status
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from pipeline.aws import s3_layout
from pipeline.aws.errors import caught
from pipeline.aws.input_forms import Channel, channels_from_dict
from pipeline.governance.admission import Admissions
from pipeline.settings.tuning_settings import TuningSettings

# Where each step's result sits in the workflow state: at a key of its own name.
STATE = {
    key: key
    for key in ("run", "admission", "tuning", "poll", "best", "evaluation", "tested", "registered")
    + ("notification", "error", "handle_error")  # handle_error: HandleFailure's own, if it failed too
}


@dataclass(frozen=True)
class DatasetRef:
    """The uploaded dataset: its bucket, name and the manifest version that started the run."""

    bucket: str
    name: str
    manifest_key: str
    version_id: str

    @property
    def prefix(self) -> str:
        return s3_layout.dataset_prefix(self.name)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "uri": self.uri}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetRef:
        return cls(d["bucket"], d["name"], d["manifest_key"], d["version_id"])


@dataclass(frozen=True)
class TestSplit:
    """Held-out images no training job sees: their index (a .lst or an augmented manifest), the
    prefix the index's entries are relative to, and how many there are."""

    index_uri: str
    prefix_uri: str
    num_samples: int
    largest_image_bytes: int = 0  # sizes the batch transform's MaxPayloadInMB

    __test__ = False  # not a pytest test class, whatever its name


@dataclass(frozen=True)
class Data:
    """What validation learned from the dataset."""

    format: str
    num_classes: int
    num_training_samples: int
    num_validation_samples: int
    channels: tuple[Channel, ...]
    test: TestSplit | None = None
    # What the run goes ahead with but a person should read (copies under "warn"): never auto-approved.
    warnings: tuple[str, ...] = ()
    pinned: dict[str, str] = dataclasses.field(default_factory=dict)  # index URI -> version validated

    def channel_uris(self) -> dict[str, str]:
        return {c.name: c.uri for c in self.channels}

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Augmented manifests: the attributes each record holds, image first, label second (the
        test split's records are read with the same ones)."""
        return self.channels[0].attribute_names if self.channels else ()

    def to_dict(self) -> dict[str, Any]:
        out = {**dataclasses.asdict(self), "channels": [c.to_dict() for c in self.channels]}
        out["warnings"] = list(self.warnings)
        out["test"] = dataclasses.asdict(self.test) if self.test else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Data:
        return cls(
            format=d["format"],
            num_classes=d["num_classes"],
            num_training_samples=d["num_training_samples"],
            num_validation_samples=d.get("num_validation_samples", 0),
            channels=channels_from_dict(d),
            test=TestSplit(**d["test"]) if d.get("test") else None,
            warnings=tuple(d.get("warnings", ())),
            pinned=dict(d.get("pinned", {})),
        )


@dataclass(frozen=True)
class Schedule:
    """How often the workflow polls, and the longest the run's tuning may take."""

    poll_seconds: int
    max_tuning_seconds: int
    evaluation_poll_seconds: int = 0  # the test split's transform, when there is one


@dataclass(frozen=True)
class Cost:
    """The run's worst case, accepted against the budget before any job started."""

    worst_case_usd: float
    price_per_hour_usd: float
    instance_hours: float
    basis: str
    budget_usd: float | None


@dataclass(frozen=True)
class Run:
    """A validated run: everything the later steps need, with the settings already checked."""

    run_id: str
    dataset: DatasetRef
    data: Data
    settings: TuningSettings
    schedule: Schedule
    cost: Cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dataset": self.dataset.to_dict(),
            "data": self.data.to_dict(),
            "settings": self.settings.to_dict(),
            "schedule": dataclasses.asdict(self.schedule),
            "cost": dataclasses.asdict(self.cost),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        """The run as ValidateDataset wrote it. The settings were validated there; restoring
        them goes through the same parser, so a run edited by hand cannot skip the checks."""
        return cls(
            run_id=d["run_id"],
            dataset=DatasetRef.from_dict(d["dataset"]),
            data=Data.from_dict(d["data"]),
            settings=TuningSettings.from_mapping(d["settings"], where="run settings"),
            schedule=Schedule(**d["schedule"]),
            cost=Cost(**d["cost"]),
        )


@dataclass(frozen=True)
class ParentChoice:
    """A warm-start parent weighed for one tuning job (tuning/history.py): taken or not, and why."""

    job: str
    parent: str
    taken: bool
    why: str


@dataclass(frozen=True)
class Tuning:
    """The run's tuning jobs. `started`: created by this execution (it may stop them); `already_started`:
    by another delivery of the same upload (never touched); `warm_start`: the parents weighed."""

    job_names: tuple[str, ...]
    started: tuple[str, ...]
    already_started: tuple[str, ...]
    output_uri: str
    warm_start: tuple[ParentChoice, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tuning:
        return cls(
            job_names=tuple(d["job_names"]),
            started=tuple(d.get("started", ())),
            already_started=tuple(d.get("already_started", ())),
            output_uri=d.get("output_uri", ""),
            warm_start=tuple(ParentChoice(**p) for p in d.get("warm_start", ())),
        )


@dataclass(frozen=True)
class Bill:
    """What the run's training jobs billed, counted best effort before ChooseBest's deadline."""

    billable_seconds: int
    estimated_cost_usd: float
    billed_jobs: int
    training_jobs: int | None  # None: the jobs could not be listed

    @property
    def complete(self) -> bool:
        return self.training_jobs is not None and self.billed_jobs == self.training_jobs


@dataclass(frozen=True)
class BestJob:
    """The best training job of the run and what registering it needs."""

    tuning_job_name: str
    training_job_name: str
    accuracy: float
    hyperparameters: dict[str, str]
    definition_name: str | None
    optimizer: str
    model_data_url: str
    training_image: str
    billable_seconds: int
    bill: Bill | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bill"}
        if self.bill is not None:  # flat run_* keys: the state machine and the notices read them
            out |= {
                "run_billable_seconds": self.bill.billable_seconds,
                "run_estimated_cost_usd": self.bill.estimated_cost_usd,
                "run_billed_jobs": self.bill.billed_jobs,
                "run_training_jobs": self.bill.training_jobs,
                "run_billing_complete": self.bill.complete,
            }
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BestJob:
        keys = ("run_billable_seconds", "run_estimated_cost_usd", "run_billed_jobs", "run_training_jobs")
        bill = Bill(*(d[k] for k in keys)) if keys[0] in d else None
        names = {f.name for f in dataclasses.fields(cls)} - {"bill"}
        return cls(**{k: v for k, v in d.items() if k in names}, bill=bill)


@dataclass(frozen=True)
class Evaluation:
    """The test split's batch transform: the model it serves, where its answers go, when it began."""

    model_name: str
    transform_job_name: str
    output_uri: str
    started_at: float  # epoch seconds: CheckEvaluation stops the transform after evaluation_max_seconds
    owned: bool = True  # False: another delivery of the same upload started it; this one only follows it


@dataclass(frozen=True)
class Tested:
    """InProgress while the transform runs; then Completed with the test accuracy (per class and the
    confusion matrix: in the document at `evaluation_uri`), or Failed: the model is registered all
    the same, pending manual approval, with the reason. NotEvaluated: the dataset has no test split."""

    status: str
    failure_reason: str = ""
    accuracy: float | None = None
    samples: int = 0
    evaluation_uri: str = ""

    __test__ = False  # not a pytest test class, whatever its name

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tested:
        """CheckEvaluation's result, or the EvaluationFailed state's (a caught `error`, in plain words)."""
        fields, error = {k: v for k, v in d.items() if k != "error"}, d.get("error")
        if isinstance(error, dict):  # {"Error": ..., "Cause": ...}, as the Catch recorded it
            parts = caught(str(error.get("Error", "")), str(error.get("Cause", "")))
            fields["failure_reason"] = ": ".join(part for part in parts if part)
        return cls(**fields)


@dataclass(frozen=True)
class Registered:
    model_package_arn: str
    approval_status: str
    metrics_uri: str
    approval_reason: str = ""  # why the version is approved or left for a person


def path(step: str, *fields: str) -> str:
    """The JSON path of a step's result or a field in it: path("run", "schedule", "poll_seconds") ->
    "$.run.schedule.poll_seconds"; KeyError for a field the contract lacks (no silent misreads)."""
    kind: Any = RESULTS[step]
    for name in fields:
        hints = typing.get_type_hints(kind)
        if name not in hints:
            raise KeyError(f"{kind.__name__} has no field {name!r}")
        kind = hints[name]
    return ".".join(("$", STATE[step], *fields))


@dataclass(frozen=True)
class Poll:
    """PollTuning's answer: InProgress, Completed or Failed, with a summary per tuning job."""

    status: str
    jobs: list[dict[str, Any]]
    failure_reason: str


@dataclass(frozen=True)
class ErrorInfo:
    """What Step Functions' Catch puts at `error`."""

    Error: str
    Cause: str


@dataclass(frozen=True)
class Notification:
    subject: str
    message: str


RESULTS: dict[str, type] = {
    "run": Run,
    "admission": Admissions,
    "tuning": Tuning,
    "poll": Poll,
    "best": BestJob,
    "evaluation": Evaluation,
    "tested": Tested,
    "registered": Registered,
    "notification": Notification,
    "error": ErrorInfo,
    "handle_error": ErrorInfo,
}
