"""The local SageMaker's tuning and training jobs: creating, listing, describing and stopping them.

What SageMaker refuses at creation is refused here too: a name in use, a warm start's parents
that are missing, unfinished, differently typed or over 750 training jobs with the new job, and
a tuning job whose whole parallel reservation exceeds the account's quota. The jobs themselves
run in training.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.sagemaker import search
from local.sagemaker.base import ApiError, Part
from local.sagemaker.quotas import QuotaError


@dataclass
class TrainingJob:
    name: str
    tuning_job: str
    definition: search.Definition
    tuned: dict[str, str]
    request: dict[str, Any]
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    status: str = "InProgress"
    secondary: str = "Starting"
    failure_reason: str = ""
    history: list[float] = field(default_factory=list)
    model_uri: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def objective(self) -> float | None:
        return self.history[-1] if self.history else None


@dataclass
class TuningJob:
    name: str
    request: dict[str, Any]
    created: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "InProgress"
    failure_reason: str = ""
    completion_reason: str = ""
    jobs: list[TrainingJob] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


# "Maximum number of training jobs per hyperparameter tuning job": 750 (SageMaker endpoints and
# quotas). Written here, not imported from the pipeline, so the stand-in checks the pipeline.
TRAINING_JOBS_PER_TUNING_JOB = 750
# What DescribeHyperParameterTuningJob shows among a definition's static hyperparameters beyond
# what was sent (the SageMaker Python SDK removes this very key when it reads a tuning job back).
OBJECTIVE_STATIC = {"_tuning_objective_metric": "validation:accuracy"}


def _hyperparameter_types(request: dict[str, Any]) -> dict[str, str]:
    """Name -> "static" or the range type, for the warm-start rules ("Warm Start Tuning
    Restrictions": the total of static plus tunable, and each one's type, must not change)."""
    definition = request.get("TrainingJobDefinition", {})
    types = {k: "static" for k in definition.get("StaticHyperParameters", {})}
    for key, ranges in request["HyperParameterTuningJobConfig"].get("ParameterRanges", {}).items():
        types.update({r["Name"]: key for r in ranges})
    return {k: v for k, v in types.items() if not k.startswith("_")}


def usage(definition: dict[str, Any]) -> str:
    """The quota a training job counts against: spot training has its own ("<type> for spot
    training job usage", Service Quotas for SageMaker), on-demand the other."""
    return "spot training" if definition.get("EnableManagedSpotTraining") else "training"


def reservation(request: dict[str, Any]) -> tuple[str, str, int]:
    """(instance type, usage, MaxParallelTrainingJobs x InstanceCount): what a tuning job holds of its quota."""
    definitions = request.get("TrainingJobDefinitions") or [request["TrainingJobDefinition"]]
    resources = definitions[0]["ResourceConfig"]
    parallel = request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"]
    return resources["InstanceType"], usage(definitions[0]), parallel * resources["InstanceCount"]


class TuningJobs(Part):
    """Mixed into LocalSageMaker: the tuning and training jobs it holds, and their API."""

    tuning_jobs: dict[str, TuningJob]
    training_jobs: dict[str, TrainingJob]

    def _run_tuning(self, job: TuningJob) -> None:
        raise NotImplementedError  # training.py

    def op_CreateHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["HyperParameterTuningJobName"]
        with self.lock:
            if name in self.tuning_jobs:
                raise ApiError("ResourceInUse", f"Hyperparameter tuning job '{name}' already exists")
            config = p["HyperParameterTuningJobConfig"]
            if config["Strategy"] == "Grid" and search.grid_choices(search.definitions_of(p)) is None:
                raise ApiError("ValidationException", "Grid search supports only categorical parameter ranges")
            self._check_parents(p)
            instance_type, kind, delta = reservation(p)
            try:  # the whole parallel reservation, checked at creation ("request delta of N Instances")
                self.quotas.reserve(instance_type, kind, delta)
            except QuotaError as exc:
                raise ApiError(exc.code, exc.message) from None
            job = TuningJob(name=name, request=p)
            self.tuning_jobs[name] = job
        thread = threading.Thread(target=self._run_tuning, args=(job,), name=f"tuning-{name}", daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()
        return {"HyperParameterTuningJobArn": self.arn("hyper-parameter-tuning-job", name)}

    def _check_parents(self, p: dict[str, Any]) -> None:
        """What CreateHyperParameterTuningJob refuses in a WarmStartConfig. The API reference
        (HyperParameterTuningJobWarmStartConfig): "All training jobs launched by parent hyperparameter
        tuning jobs and the new hyperparameter tuning jobs count against the limit of training jobs
        for the tuning job" (750, SageMaker endpoints and quotas)."""
        warm = p.get("WarmStartConfig")
        if not warm:
            return
        launched = p["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
        for parent in warm["ParentHyperParameterTuningJobs"]:
            job = self.tuning_jobs.get(parent["HyperParameterTuningJobName"])
            if job is None:
                raise ApiError(
                    "ResourceNotFound", f"Parent tuning job {parent['HyperParameterTuningJobName']} not found"
                )
            if job.status not in ("Completed", "Stopped", "Failed"):  # "a terminal state"
                raise ApiError("ValidationException", f"Parent tuning job {job.name} is {job.status}, not finished")
            old, new = _hyperparameter_types(job.request), _hyperparameter_types(p)
            retyped = [k for k in old if k in new and "static" not in (old[k], new[k]) and old[k] != new[k]]
            if set(old) != set(new) or retyped:
                raise ApiError(
                    "ValidationException",
                    f"Parent tuning job {job.name}: the static plus tunable hyperparameters, or their types, differ",
                )
            launched += len(job.jobs)
        if launched > TRAINING_JOBS_PER_TUNING_JOB:
            raise ApiError(
                "ValidationException",
                f"The parents' {launched - p['HyperParameterTuningJobConfig']['ResourceLimits']['MaxNumberOfTrainingJobs']}"
                f" training jobs and this job's together exceed {TRAINING_JOBS_PER_TUNING_JOB}",
            )

    def parent_observations(self, request: dict[str, Any]) -> list[search.Observation]:
        names = [
            p["HyperParameterTuningJobName"]
            for p in request.get("WarmStartConfig", {}).get("ParentHyperParameterTuningJobs", [])
        ]
        with self.lock:
            return [
                search.Observation(t.definition.name, dict(t.tuned), t.objective)
                for name in names
                for t in self.tuning_jobs[name].jobs
                if t.status == "Completed" and t.objective is not None
            ]

    def op_ListHyperParameterTuningJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            jobs = [
                j
                for j in self.tuning_jobs.values()
                if p.get("NameContains", "") in j.name and j.status == p.get("StatusEquals", j.status)
            ]
            jobs.sort(key=lambda j: j.created, reverse=p.get("SortOrder", "Ascending") == "Descending")
            start, size = int(p.get("NextToken", "0")), p.get("MaxResults", 100)
            out: dict[str, Any] = {
                "HyperParameterTuningJobSummaries": [
                    {
                        "HyperParameterTuningJobName": j.name,
                        "HyperParameterTuningJobArn": self.arn("hyper-parameter-tuning-job", j.name),
                        "HyperParameterTuningJobStatus": j.status,
                        "Strategy": j.request["HyperParameterTuningJobConfig"]["Strategy"],
                        "CreationTime": j.created,
                        "TrainingJobStatusCounters": self._counters(j)[0],
                        "ObjectiveStatusCounters": self._counters(j)[1],
                        "ResourceLimits": j.request["HyperParameterTuningJobConfig"]["ResourceLimits"],
                    }
                    for j in jobs[start : start + size]
                ]
            }
            if start + size < len(jobs):
                out["NextToken"] = str(start + size)
            return out

    def op_DescribeHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._tuning(p["HyperParameterTuningJobName"])
        with self.lock:
            return self._describe_tuning(job)

    def op_StopHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._tuning(p["HyperParameterTuningJobName"])
        with self.lock:
            if job.status != "InProgress":
                raise ApiError("ValidationException", f"tuning job {job.name} is {job.status}, not InProgress")
            job.status = "Stopping"
            job.stop.set()
            for t in job.jobs:
                t.stop.set()
        return {}

    def op_ListTrainingJobsForHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        job = self._tuning(p["HyperParameterTuningJobName"])
        with self.lock:
            jobs = [t for t in job.jobs if "StatusEquals" not in p or t.status == p["StatusEquals"]]
            key = {
                "Name": lambda t: t.name,
                "CreationTime": lambda t: t.created,
                "Status": lambda t: t.status,
                "FinalObjectiveMetricValue": lambda t: -1.0 if t.objective is None else t.objective,
            }[p.get("SortBy", "CreationTime")]
            jobs.sort(key=key, reverse=p.get("SortOrder", "Descending") == "Descending")
            start = int(p.get("NextToken", "0"))
            size = p.get("MaxResults", 10)
            page = jobs[start : start + size]
            out: dict[str, Any] = {"TrainingJobSummaries": [self._summary(t) for t in page]}
            if start + size < len(jobs):
                out["NextToken"] = str(start + size)
            return out

    def _tuning(self, name: str) -> TuningJob:
        with self.lock:
            job = self.tuning_jobs.get(name)
        if job is None:
            raise ApiError("ResourceNotFound", f"Amazon SageMaker can't find a tuning job with name {name}")
        return job

    def _counters(self, job: TuningJob) -> tuple[dict[str, int], dict[str, int]]:
        status = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        for t in job.jobs:
            if t.status == "Failed":
                status["NonRetryableError"] += 1
                objective["Failed"] += 1
            else:
                status[t.status] += 1
                objective[
                    "Pending" if t.status == "InProgress" else "Succeeded" if t.objective is not None else "Failed"
                ] += 1
        return status, objective

    def _summary(self, t: TrainingJob) -> dict[str, Any]:
        s: dict[str, Any] = {
            "TrainingJobName": t.name,
            "TrainingJobArn": self.arn("training-job", t.name),
            "TuningJobName": t.tuning_job,
            "CreationTime": t.created,
            "TrainingJobStatus": t.status,
            "TunedHyperParameters": t.tuned,
        }
        if t.definition.name:
            s["TrainingJobDefinitionName"] = t.definition.name
        if t.started:
            s["TrainingStartTime"] = t.started
        if t.ended:
            s["TrainingEndTime"] = t.ended
        if t.failure_reason:
            s["FailureReason"] = t.failure_reason[:1024]
        if t.objective is not None:
            s["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize",
                "MetricName": "validation:accuracy",
                "Value": t.objective,
            }
            s["ObjectiveStatus"] = "Succeeded"
        elif t.status != "InProgress":
            s["ObjectiveStatus"] = "Failed"
        else:
            s["ObjectiveStatus"] = "Pending"
        return s

    def _describe_tuning(self, job: TuningJob) -> dict[str, Any]:
        status, objective = self._counters(job)
        r = job.request
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": job.name,
            "HyperParameterTuningJobArn": self.arn("hyper-parameter-tuning-job", job.name),
            "HyperParameterTuningJobConfig": r["HyperParameterTuningJobConfig"],
            "HyperParameterTuningJobStatus": job.status,
            "CreationTime": job.created,
            "LastModifiedTime": job.ended or time.time(),
            "TrainingJobStatusCounters": status,
            "ObjectiveStatusCounters": objective,
        }
        for key in ("TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"):
            if key in r:
                out[key] = r[key]
        if "TrainingJobDefinition" in r:  # SageMaker adds the objective to the static hyperparameters
            static = {**r["TrainingJobDefinition"].get("StaticHyperParameters", {}), **OBJECTIVE_STATIC}
            out["TrainingJobDefinition"] = {**r["TrainingJobDefinition"], "StaticHyperParameters": static}
        if job.ended:
            out["HyperParameterTuningEndTime"] = job.ended
            out["ConsumedResources"] = {"RuntimeInSeconds": int(job.ended - job.created)}
        if job.failure_reason:
            out["FailureReason"] = job.failure_reason[:1024]
        if job.completion_reason:
            out["TuningJobCompletionDetails"] = {"NumberOfTrainingJobsObjectiveNotImproving": 0}
        finished = [t for t in job.jobs if t.status == "Completed" and t.objective is not None]
        if finished:
            best = max(finished, key=lambda t: t.objective or 0.0)
            out["BestTrainingJob"] = self._summary(best)
        return out
