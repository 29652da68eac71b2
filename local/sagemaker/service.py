"""A local SageMaker that really trains: tuning jobs, training jobs and the model registry.

Operations take and return the API's JSON shapes (checked against botocore's model in the
tests). Tuning jobs run in background threads; each training job trains on the CPU.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch

from local.api_model import request_errors
from local.sagemaker import search, trainer
from local.sagemaker.quotas import AccountQuotas, QuotaError
from local.sagemaker.transform import TransformJob, TransformJobs

# Objects read side by side when a channel is fetched (boto3 clients are thread-safe), and how
# often the fetch reports its progress.
FETCH_WORKERS = 16
FETCH_EVENT_EVERY = 50

logger = logging.getLogger("local.sagemaker")
optuna.logging.set_verbosity(optuna.logging.WARNING)
ACCOUNT = "123456789012"
BILLING_SECONDS_MINIMUM = 1


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


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


def _reservation(request: dict[str, Any]) -> tuple[str, str, int]:
    """(instance type, usage, MaxParallelTrainingJobs x InstanceCount): what a tuning job holds of its quota."""
    definitions = request.get("TrainingJobDefinitions") or [request["TrainingJobDefinition"]]
    resources = definitions[0]["ResourceConfig"]
    parallel = request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"]
    return resources["InstanceType"], usage(definitions[0]), parallel * resources["InstanceCount"]


Listener = Callable[[str, dict[str, Any]], None]


class LocalSageMaker(TransformJobs):
    def __init__(
        self,
        *,
        s3_client: Callable[[], Any],
        region: str = "us-east-1",
        seed: int = 0,
        quotas: AccountQuotas | None = None,
    ) -> None:
        self._s3 = s3_client
        self.quotas = quotas or AccountQuotas()
        self.region = region
        self.seed = seed
        self.lock = threading.RLock()
        self.tuning_jobs: dict[str, TuningJob] = {}
        self.training_jobs: dict[str, TrainingJob] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.transform_jobs: dict[str, TransformJob] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.listeners: list[Listener] = []
        self._data_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        # index uri (.lst or augmented manifest) -> its (image uri, label) items and every image's bytes
        self._fetched: dict[str, Future[tuple[list[tuple[str, int]], dict[str, bytes]]]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[tuple[str, int]]] = {}
        self.threads: list[threading.Thread] = []
        # Training failures to simulate: a predicate on the job's hyperparameters -> reason.
        self.training_faults: list[tuple[Callable[[dict[str, str]], bool], str]] = []

    # ------------------------------------------------------------------ plumbing

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{kind}/{name.lower()}"

    def emit(self, event: str, **detail: Any) -> None:
        for listener in list(self.listeners):
            listener(event, detail)

    def inject(self, operation: str, *errors: tuple[str, int]) -> None:
        """Fail the next calls of `operation` with these (error code, HTTP status) answers."""
        with self.lock:
            self.faults.setdefault(operation, []).extend(errors)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            raise ApiError("UnknownOperationException", f"local SageMaker does not implement {operation}")
        # SageMaker validates enums, lengths, ranges and patterns server-side; so does this.
        problems = request_errors("sagemaker", operation, params)
        if problems:
            raise ApiError("ValidationException", "; ".join(problems)[:2000])
        with self.lock:
            self.requests.append((operation, params))
            pending = self.faults.get(operation)
            fault = pending.pop(0) if pending else None
        if fault is not None:
            code, status = fault
            self.emit("fault", operation=operation, code=code)
            raise ApiError(code, f"injected fault: {code}", status)
        return handler(params)

    def quota_call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Service Quotas, for the names this account's quotas hold; checked against botocore's model."""
        problems = request_errors("service-quotas", operation, params)
        if problems:
            raise ApiError("ValidationException", "; ".join(problems)[:2000])
        return self.quotas.call(operation, params, self.region, ACCOUNT)

    def shutdown(self, timeout: float) -> None:
        """Stop every job and wait for the tuning threads (local services go away next)."""
        with self.lock:
            for job in self.tuning_jobs.values():
                job.stop.set()
                for t in job.jobs:
                    t.stop.set()
            for transform in self.transform_jobs.values():
                transform.stop.set()
            threads = list(self.threads)
        deadline = time.time() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.time()))

    # ------------------------------------------------------------------ tuning jobs

    def op_CreateHyperParameterTuningJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["HyperParameterTuningJobName"]
        with self.lock:
            if name in self.tuning_jobs:
                raise ApiError("ResourceInUse", f"Hyperparameter tuning job '{name}' already exists")
            config = p["HyperParameterTuningJobConfig"]
            if config["Strategy"] == "Grid" and search.grid_choices(search.definitions_of(p)) is None:
                raise ApiError("ValidationException", "Grid search supports only categorical parameter ranges")
            self._check_parents(p)
            instance_type, kind, delta = _reservation(p)
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

    def op_ListTags(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = next(
                (
                    j
                    for j in self.tuning_jobs.values()
                    if self.arn("hyper-parameter-tuning-job", j.name) == p["ResourceArn"]
                ),
                None,
            )
        if job is not None:
            return {"Tags": list(job.request.get("Tags", []))}
        tags = self.tags_of(p["ResourceArn"])
        if tags is None:
            raise ApiError("ValidationException", f"resource {p['ResourceArn']} not found")
        return {"Tags": tags}

    def _api_error(self, code: str, message: str) -> Exception:
        return ApiError(code, message)

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

    def op_DescribeTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            t = self.training_jobs.get(p["TrainingJobName"])
            if t is None:
                raise ApiError(
                    "ValidationException", f"Requested resource not found: training job {p['TrainingJobName']}"
                )
            return self._describe_training(t)

    # ------------------------------------------------------------------ model registry

    def op_CreateModelPackageGroup(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelPackageGroupName"]
        with self.lock:
            if name in self.groups:
                raise ApiError("ValidationException", f"Model Package Group already exists: {name}")
            self.groups[name] = {"name": name, "created": time.time(), "versions": 0}
        return {"ModelPackageGroupArn": self.arn("model-package-group", name)}

    def op_CreateModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        group_name = p["ModelPackageGroupName"]
        with self.lock:
            token = p.get("ClientToken")
            if token and token in self.tokens:
                return {"ModelPackageArn": self.tokens[token]}
            group = self.groups.get(group_name)
            if group is None:
                raise ApiError("ValidationException", f"Model Package Group {group_name} does not exist")
            group["versions"] += 1
            version = group["versions"]
            arn = self.arn("model-package", f"{group_name}/{version}")
            self.packages[arn] = {**p, "ModelPackageVersion": version, "ModelPackageArn": arn, "created": time.time()}
            if token:
                self.tokens[token] = arn
        self.emit("model_registered", arn=arn, request=p)
        return {"ModelPackageArn": arn}

    def op_ListModelPackages(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            packages = [
                pk
                for pk in self.packages.values()
                if pk["ModelPackageGroupName"] == p.get("ModelPackageGroupName", pk["ModelPackageGroupName"])
                and pk["ModelApprovalStatus"] == p.get("ModelApprovalStatus", pk["ModelApprovalStatus"])
            ]
            packages.sort(key=lambda pk: pk["created"], reverse=p.get("SortOrder", "Ascending") == "Descending")
            start = int(p.get("NextToken", "0"))
            end = start + p.get("MaxResults", 100)
            more = {"NextToken": str(end)} if end < len(packages) else {}
            packages = packages[start:end]
            return {
                **more,
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageName": pk["ModelPackageGroupName"],
                        "ModelPackageGroupName": pk["ModelPackageGroupName"],
                        "ModelPackageVersion": pk["ModelPackageVersion"],
                        "ModelPackageArn": pk["ModelPackageArn"],
                        "ModelPackageDescription": pk.get("ModelPackageDescription", ""),
                        "CreationTime": pk["created"],
                        "ModelPackageStatus": "Completed",
                        "ModelApprovalStatus": pk["ModelApprovalStatus"],
                    }
                    for pk in packages
                ],
            }

    def op_DescribeModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pk = self.packages.get(p["ModelPackageName"])
            if pk is None:
                raise ApiError("ValidationException", f"Model package {p['ModelPackageName']} does not exist")
            out = {k: v for k, v in pk.items() if k not in ("created", "ClientToken")}
            out.update(
                {
                    "ModelPackageName": pk["ModelPackageGroupName"],
                    "CreationTime": pk["created"],
                    "ModelPackageStatus": "Completed",
                    "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                }
            )
            return out

    # ------------------------------------------------------------------ describe shapes

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

    def _describe_training(self, t: TrainingJob) -> dict[str, Any]:
        d = t.request
        hyperparameters = {**t.definition.static, **t.tuned}
        out: dict[str, Any] = {
            "TrainingJobName": t.name,
            "TrainingJobArn": self.arn("training-job", t.name),
            "TuningJobArn": self.arn("hyper-parameter-tuning-job", t.tuning_job),
            "ModelArtifacts": {
                "S3ModelArtifacts": t.model_uri
                or f"{d['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{t.name}/output/model.tar.gz"
            },
            "TrainingJobStatus": t.status,
            "SecondaryStatus": t.secondary,
            "HyperParameters": hyperparameters,
            "AlgorithmSpecification": d["AlgorithmSpecification"],
            "RoleArn": d["RoleArn"],
            "InputDataConfig": d["InputDataConfig"],
            "OutputDataConfig": d["OutputDataConfig"],
            "ResourceConfig": d["ResourceConfig"],
            "StoppingCondition": d["StoppingCondition"],
            "CreationTime": t.created,
            "LastModifiedTime": t.ended or time.time(),
            "EnableNetworkIsolation": d.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": d.get("EnableInterContainerTrafficEncryption", False),
            "EnableManagedSpotTraining": d.get("EnableManagedSpotTraining", False),
            "FinalMetricDataList": [
                {"MetricName": "validation:accuracy", "Value": t.objective, "Timestamp": t.ended or time.time()}
            ]
            if t.objective is not None
            else [],
        }
        if t.started:
            out["TrainingStartTime"] = t.started
        if t.ended and t.started:
            out["TrainingEndTime"] = t.ended
            seconds = max(BILLING_SECONDS_MINIMUM, int(round(t.ended - t.started)))
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        if t.failure_reason:
            out["FailureReason"] = t.failure_reason[:1024]
        if "CheckpointConfig" in d:
            out["CheckpointConfig"] = d["CheckpointConfig"]
        return out

    # ------------------------------------------------------------------ running

    def _read_s3(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()

    def _list_s3(self, uri: str) -> list[str]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        keys = []
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def _channel(
        self, request: dict[str, Any], split: str, hp: trainer.Hyperparameters
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A channel's images and labels, decoded for these hyperparameters: from an augmented
        manifest (S3DataType AugmentedManifestFile) or from image files and their `.lst`."""
        sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"]}
        if split not in sources:
            raise trainer.AlgorithmError(f"no {split} channel")
        source = sources[split]
        if source["S3DataType"] == "AugmentedManifestFile":
            index_uri, names = source["S3Uri"], list(source.get("AttributeNames", []))

            def items(text: str) -> list[tuple[str, int]]:
                return trainer.manifest_items(text, index_uri, names)
        else:
            index_uri, channel_uri = self._lst_of(sources, split), source["S3Uri"]

            def items(text: str) -> list[tuple[str, int]]:
                return trainer.lst_items(text, index_uri, channel_uri)

        cache_key = (index_uri, f"{hp.image_shape}{hp.resize}")
        with self.lock:
            cached = self._data_cache.get(cache_key)
        if cached is None:
            listed, images = self._fetch(index_uri, items)
            cached = trainer.decode_images(images.__getitem__, listed, hp)
            with self.lock:
                self._data_cache[cache_key] = cached
        return cached

    def _lst_of(self, sources: dict[str, Any], split: str) -> str:
        if f"{split}_lst" not in sources:
            raise trainer.AlgorithmError(f"image files need a {split}_lst channel with their .lst file")
        prefix = sources[f"{split}_lst"]["S3Uri"]
        lst_keys = [k for k in self._list_s3(prefix) if k.endswith(".lst")]
        if not lst_keys:
            raise trainer.AlgorithmError(f'No S3 objects found under S3 URL "{prefix}"')
        return f"s3://{prefix.removeprefix('s3://').partition('/')[0]}/{lst_keys[0]}"

    def _fetch(
        self, index_uri: str, items: Callable[[str], list[tuple[str, int]]]
    ) -> tuple[list[tuple[str, int]], dict[str, bytes]]:
        """A channel's index (a .lst or an augmented manifest) and every image it names, read once
        for all the run's training jobs, FETCH_WORKERS objects at a time; the jobs that need it
        meanwhile wait for the same fetch."""
        with self.lock:
            pending = self._fetched.get(index_uri)
            mine = pending is None
            if pending is None:
                pending = self._fetched[index_uri] = Future()
        if not mine:
            return pending.result()
        try:
            s3 = self._s3()  # one client for the whole fetch, shared by the threads

            def read(uri: str) -> bytes:
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

            listed = items(read(index_uri).decode())
            uris = sorted({uri for uri, _ in listed})
            images: dict[str, bytes] = {}
            with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="fetch") as pool:
                for done, (uri, body) in enumerate(zip(uris, pool.map(read, uris), strict=True), start=1):
                    images[uri] = body
                    if done % FETCH_EVENT_EVERY == 0 or done == len(uris):
                        self.emit("fetch", channel=index_uri, done=done, total=len(uris))
        except BaseException as exc:
            with self.lock:
                del self._fetched[index_uri]  # a later job tries again
            pending.set_exception(exc)
            raise
        pending.set_result((listed, images))
        return listed, images

    def _run_tuning(self, job: TuningJob) -> None:
        try:
            self._search(job)
        except Exception as exc:  # the tuning job fails; the workflow reads FailureReason
            logger.exception("tuning job %s failed", job.name)
            with self.lock:
                job.failure_reason = f"{type(exc).__name__}: {exc}"
        with self.lock:
            if job.stop.is_set():
                job.status = "Stopped"
            elif job.failure_reason:
                job.status = "Failed"
            elif not any(t.status == "Completed" for t in job.jobs):
                job.status = "Failed"
                reasons = {t.failure_reason for t in job.jobs if t.failure_reason}
                job.failure_reason = "All training jobs failed. " + "; ".join(sorted(reasons))[:900]
            else:
                job.status = "Completed"
            job.ended = time.time()
        instance_type, kind, delta = _reservation(job.request)
        self.quotas.unreserve(instance_type, kind, delta)
        self.emit("tuning_ended", job=job.name, status=job.status, reason=job.failure_reason)

    def _search(self, job: TuningJob) -> None:
        config = job.request["HyperParameterTuningJobConfig"]
        limits = config["ResourceLimits"]
        max_jobs, parallel = limits["MaxNumberOfTrainingJobs"], limits["MaxParallelTrainingJobs"]
        if config["Strategy"] == "Grid":
            max_jobs = min(max_jobs, search.grid_size(job.request))
        criteria = config.get("TuningJobCompletionCriteria", {})
        # Reproducible: the seed depends on the service's seed and the job's position, not on
        # its name (which carries the manifest's random version id).
        with self.lock:
            position = list(self.tuning_jobs).index(job.name)
        seed = int(hashlib.sha256(f"{self.seed}:{position}".encode()).hexdigest()[:8], 16)
        study = search.make_study(job.request, seed)
        definitions = search.definitions_of(job.request)
        search.warm_start(study, definitions, self.parent_observations(job.request))
        running: dict[Future[None], tuple[optuna.Trial, TrainingJob]] = {}
        best, since_improvement, launched = None, 0, 0
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"train-{job.name}") as pool:
            while True:
                while (
                    launched < max_jobs
                    and len(running) < parallel
                    and not job.stop.is_set()
                    and not job.completion_reason
                ):
                    trial = study.ask()
                    definition, tuned = search.sample(trial, definitions)
                    launched += 1
                    t = TrainingJob(
                        name=f"{job.name}-{launched:03d}-{uuid.uuid4().hex[:8]}",
                        tuning_job=job.name,
                        definition=definition,
                        tuned=tuned,
                        request=self._definition_request(job.request, definition),
                    )
                    with self.lock:
                        job.jobs.append(t)
                        self.training_jobs[t.name] = t
                    running[pool.submit(self._train, t, trial, seed + launched)] = (trial, t)
                if not running:
                    break
                done = next(iter(f for f in list(running) if f.done()), None)
                if done is None:
                    time.sleep(0.05)
                    continue
                trial, t = running.pop(done)
                if t.status == "Completed" and t.objective is not None:
                    study.tell(trial, t.objective)
                    if best is None or t.objective > best:
                        best, since_improvement = t.objective, 0
                    else:
                        since_improvement += 1
                elif t.status == "Stopped" and t.history and not job.stop.is_set():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                target = criteria.get("TargetObjectiveMetricValue")
                patience = criteria.get("BestObjectiveNotImproving", {}).get("MaxNumberOfTrainingJobsNotImproving")
                if target is not None and best is not None and best >= target:
                    job.completion_reason = f"reached the target objective {target}"
                elif patience and since_improvement >= patience:
                    job.completion_reason = f"{patience} training jobs without improvement"

    def _definition_request(self, request: dict[str, Any], definition: search.Definition) -> dict[str, Any]:
        if "TrainingJobDefinitions" in request:
            return next(d for d in request["TrainingJobDefinitions"] if d["DefinitionName"] == definition.name)
        return request["TrainingJobDefinition"]

    def _train(self, t: TrainingJob, trial: optuna.Trial, seed: int) -> None:
        torch.set_num_threads(1)
        resources = t.request["ResourceConfig"]
        self.quotas.start(resources["InstanceType"], usage(t.request), resources["InstanceCount"])
        t.started = time.time()
        t.secondary = "Training"
        hp_strings = {**t.definition.static, **t.tuned}
        self.emit(
            "training_started",
            job=t.name,
            tuning_job=t.tuning_job,
            hyperparameters=t.tuned,
            definition=t.definition.name,
        )
        runtime_limit = t.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        try:
            for matches, reason in self.training_faults:
                if matches(hp_strings):
                    raise trainer.AlgorithmError(reason)
            hp = trainer.Hyperparameters.parse(hp_strings)
            train_data = self._channel(t.request, "train", hp)
            validation_data = self._channel(t.request, "validation", hp)

            def on_epoch(epoch: int, accuracy: float) -> bool:
                self.emit("epoch", job=t.name, epoch=epoch, accuracy=accuracy)
                with self.lock:
                    t.history.append(accuracy)
                if time.time() - (t.started or 0) > runtime_limit:
                    t.stop.set()
                    return False
                trial.report(accuracy, epoch + 1)
                if trial.should_prune():
                    t.secondary = "Stopped"  # early stopping: SageMaker marks the job Stopped
                    return False
                return True

            model, history = trainer.train(
                hp,
                train_data,
                validation_data,
                seed=seed,
                on_epoch=on_epoch,
                stop=t.stop,
                log=lambda line: logger.info("%s %s", t.name, line),
            )
            output = t.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            t.model_uri = f"{output}/{t.name}/output/model.tar.gz"
            bucket, _, key = t.model_uri.removeprefix("s3://").partition("/")
            mean = train_data[0].mean(dim=(0, 2, 3))
            self._s3().put_object(Bucket=bucket, Key=key, Body=trainer.model_archive(model, hp, history, mean))
            with self.lock:
                t.status = "Stopped" if t.secondary == "Stopped" else "Completed"
                t.secondary = "Completed" if t.status == "Completed" else "Stopped"
        except trainer.Stopped:
            with self.lock:
                t.status = t.secondary = "Stopped"
        except trainer.AlgorithmError as exc:
            with self.lock:
                t.status, t.secondary = "Failed", "Failed"
                t.failure_reason = f"AlgorithmError: {exc}"
        except Exception as exc:
            logger.exception("training job %s failed", t.name)
            with self.lock:
                t.status, t.secondary = "Failed", "Failed"
                t.failure_reason = f"ClientError: {type(exc).__name__}: {exc}"
        t.ended = time.time()
        self.quotas.stop(resources["InstanceType"], usage(t.request), resources["InstanceCount"])
        self.emit("training_ended", job=t.name, status=t.status, accuracy=t.objective, reason=t.failure_reason)
