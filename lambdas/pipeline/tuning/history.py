"""The platform's memory: which earlier runs a new run warm-starts from, and why.

Every registered run leaves a record (RegisterModel writes it): its tuning jobs, its layout and
the facts of its data. With `warm_start: auto`, a run looks for parents in this order:

1. the previous registered run of the same dataset (a new version of it), job for job;
2. if that run cannot be used, the most similar registered runs of other datasets: the same
   number of classes, the same image shape, between half and twice the training images, and
   the same layout (each job of this run takes the same job of theirs); the closest in size
   first, then the most recent.

Both are TransferLearning: the data changed. A tuning job takes at most MAX_PARENTS parents
("ParentHyperParameterTuningJobs ... Maximum number of 5 items", API reference,
HyperParameterTuningJobWarmStartConfig). SageMaker's own restrictions (`warm_start.refusal`)
are checked after, against each parent's Describe answer, by StartTuning: a parent refused or
deleted leaves its place to the next candidate.

`warm_start: previous` is the first step only; `off` is neither. Layout `definitions` has no
warm start (SageMaker allows WarmStartConfig with one training definition only): the run starts
cold and says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.contract import Run

MAX_PARENTS = 5
SIMILAR_SIZE = 2.0  # a similar dataset has between half and twice this run's training images
MAX_RECORDS_READ = 50  # the most recently registered runs of this layout and classes that a run reads
MAX_DESCRIBED = 10  # candidates described per tuning job, at most, before it starts cold
WARM_LAYOUTS = ("flat", "job_per_optimizer")  # one training definition per tuning job


@dataclass(frozen=True)
class RunRecord:
    """What a registered run leaves for later runs (runs/<dataset>/latest.json)."""

    dataset: str
    run_id: str
    layout: str
    tuning_jobs: tuple[str, ...]
    num_classes: int | None = None  # None: recorded before these facts were
    num_training_samples: int | None = None
    image_shape: str | None = None

    @classmethod
    def of(cls, run: Run, tuning_jobs: Iterable[str]) -> RunRecord:
        return cls(
            dataset=run.dataset.name,
            run_id=run.run_id,
            layout=run.settings.layout,
            tuning_jobs=tuple(tuning_jobs),
            num_classes=run.data.num_classes,
            num_training_samples=run.data.num_training_samples,
            image_shape=run.settings.image_shape,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tuning_jobs": list(self.tuning_jobs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], dataset: str) -> RunRecord:
        """A record as stored; `dataset` is the one its key names (older records do not say)."""
        return cls(
            dataset=d.get("dataset", dataset),
            run_id=d["run_id"],
            layout=d["layout"],
            tuning_jobs=tuple(d.get("tuning_jobs", ())),
            num_classes=d.get("num_classes"),
            num_training_samples=d.get("num_training_samples"),
            image_shape=d.get("image_shape"),
        )


@dataclass(frozen=True)
class Candidate:
    """An earlier run this run may warm-start from, and why it was chosen."""

    record: RunRecord
    why: str
    previous: bool  # the previous run of this same dataset (then the only parent taken)


def why_not_similar(record: RunRecord, run: Run) -> str | None:
    """Why `record` is not a similar run for `run`; None if it is."""
    if record.dataset == run.dataset.name:
        return "it is this dataset's own run"
    if record.layout != run.settings.layout:
        return f"its layout is {record.layout!r}, this run's {run.settings.layout!r}"
    if record.num_classes != run.data.num_classes:
        return f"it has {record.num_classes} classes, this run {run.data.num_classes}"
    if record.image_shape != run.settings.image_shape:
        return f"its image shape is {record.image_shape}, this run's {run.settings.image_shape}"
    if not record.num_training_samples:
        return "its record does not say how many training images it had"
    ratio = record.num_training_samples / run.data.num_training_samples
    if not 1 / SIMILAR_SIZE <= ratio <= SIMILAR_SIZE:
        return (
            f"its {record.num_training_samples:,} training images are not within {SIMILAR_SIZE:g}x of this "
            f"run's {run.data.num_training_samples:,}"
        )
    return None


def candidates(run: Run, previous: RunRecord | None, others: Iterable[RunRecord]) -> list[Candidate]:
    """The runs `run` may warm-start from, best first: its dataset's previous run, then (for
    `auto`) the similar runs of other datasets, closest in size first. `others` come newest first
    (a tie in size goes to the most recent). Layout `definitions` or `off`: none."""
    mode = run.settings.warm_start
    if mode == "off" or run.settings.layout not in WARM_LAYOUTS:
        return []
    out: list[Candidate] = []
    if previous and previous.run_id != run.run_id and previous.layout == run.settings.layout:
        out.append(Candidate(previous, f"the previous run of this dataset ({previous.run_id})", previous=True))
    if mode != "auto":
        return out
    similar = [r for r in others if why_not_similar(r, run) is None]
    similar.sort(key=lambda r: abs(math.log((r.num_training_samples or 1) / run.data.num_training_samples)))
    for r in similar:
        why = (
            f"a similar run ({r.run_id} of dataset {r.dataset}): {r.num_classes} classes and {r.image_shape} images "
            f"like this one, {r.num_training_samples:,} training images against {run.data.num_training_samples:,}"
        )
        out.append(Candidate(r, why, previous=False))
    return out


def jobs_for(record: RunRecord, job_names: list[str], run_id: str) -> dict[str, str]:
    """This run's tuning job -> the same job of `record`'s run (one job, or one per optimizer)."""
    mapped = {}
    for name in job_names:
        suffix = name[len(run_id) :]  # "" (one job) or "-<optimizer code>"
        for old in record.tuning_jobs:
            if old[len(record.run_id) :] == suffix:
                mapped[name] = old
    return mapped
