"""The local SageMaker's models and batch transform jobs: the held-out test evaluation's stand-in.

CreateModel keeps the model's definition; CreateTransformJob runs, in a thread, the algorithm's
inference (the locally trained network of the model's artifact) over every object of the
input ManifestFile, and writes one answer per image, the object's key + ".out", a JSON list of
class probabilities, as SageMaker's batch transform does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.sagemaker import trainer
from local.sagemaker.base import ApiError, Part
from local.sagemaker.quotas import QuotaError

logger = logging.getLogger("local.sagemaker")


MB = 1_000_000  # the strict reading of the API's "MB": a pipeline counting 2^20 fails here


@dataclass
class TransformJob:
    name: str
    request: dict[str, Any]
    created: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "InProgress"
    failure_reason: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


class TransformJobs(Part):
    """Mixed into LocalSageMaker: the models and transform jobs it holds, and their API."""

    models: dict[str, dict[str, Any]]
    transform_jobs: dict[str, TransformJob]

    def op_CreateModel(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        with self.lock:
            if name in self.models:
                raise ApiError(
                    "ValidationException", f'Cannot create already existing model "{self.arn("model", name)}".'
                )
            self.models[name] = {**p, "CreationTime": time.time()}
        return {"ModelArn": self.arn("model", name)}

    def op_DeleteModel(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.models.pop(p["ModelName"], None) is None:
                raise ApiError("ValidationException", f'Could not find model "{self.arn("model", p["ModelName"])}".')
        return {}

    def op_DescribeModel(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            model = self.models.get(p["ModelName"])
        if model is None:
            raise ApiError("ValidationException", f'Could not find model "{self.arn("model", p["ModelName"])}".')
        return {
            "ModelName": p["ModelName"],
            "ModelArn": self.arn("model", p["ModelName"]),
            "CreationTime": model["CreationTime"],
            "ExecutionRoleArn": model.get("ExecutionRoleArn", ""),
            **({"PrimaryContainer": model["PrimaryContainer"]} if "PrimaryContainer" in model else {}),
        }

    def op_CreateTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["TransformJobName"]
        with self.lock:
            if name in self.transform_jobs:
                raise ApiError("ResourceInUse", f"Job {name} already exists")
            if p["ModelName"] not in self.models:
                raise ApiError("ValidationException", f'Could not find model "{p["ModelName"]}".')
            resources = p["TransformResources"]
            try:  # held for the job's lifetime, like a tuning job's parallel reservation
                self.quotas.reserve(resources["InstanceType"], "transform", resources["InstanceCount"])
            except QuotaError as exc:
                raise ApiError(exc.code, exc.message) from None
            job = self.transform_jobs[name] = TransformJob(name=name, request=p)
        thread = threading.Thread(target=self._run_transform, args=(job,), name=f"transform-{name}", daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()
        return {"TransformJobArn": self.arn("transform-job", name)}

    def op_DescribeTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self.transform_jobs.get(p["TransformJobName"])
            if job is None:
                raise ApiError("ValidationException", f"Could not find job {p['TransformJobName']}")
            described: dict[str, Any] = {
                "TransformJobName": job.name,
                "TransformJobArn": self.arn("transform-job", job.name),
                "TransformJobStatus": job.status,
                "ModelName": job.request["ModelName"],
                "TransformInput": job.request["TransformInput"],
                "TransformOutput": job.request["TransformOutput"],
                "TransformResources": job.request["TransformResources"],
                "CreationTime": datetime.fromtimestamp(job.created, UTC),
                # Billed from here to TransformEndTime; local instances start at once.
                "TransformStartTime": datetime.fromtimestamp(job.created, UTC),
            }
            if job.failure_reason:
                described["FailureReason"] = job.failure_reason
            if job.ended is not None:
                described["TransformEndTime"] = datetime.fromtimestamp(job.ended, UTC)
        return described

    def op_StopTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self.transform_jobs.get(p["TransformJobName"])
            if job is None:
                raise ApiError("ValidationException", f"Could not find job {p['TransformJobName']}")
            if job.status == "InProgress":
                job.status = "Stopping"
                job.stop.set()
        return {}

    def op_ListTransformJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            jobs = [
                j
                for j in self.transform_jobs.values()
                if p.get("NameContains", "") in j.name and p.get("StatusEquals", j.status) == j.status
            ]
            summaries = [
                {
                    "TransformJobName": j.name,
                    "TransformJobArn": self.arn("transform-job", j.name),
                    "CreationTime": datetime.fromtimestamp(j.created, UTC),
                    "TransformJobStatus": j.status,
                }
                for j in jobs
            ]
        return {"TransformJobSummaries": summaries}

    def tags_of(self, arn: str) -> list[dict[str, str]] | None:
        with self.lock:
            for j in self.transform_jobs.values():
                if self.arn("transform-job", j.name) == arn:
                    return list(j.request.get("Tags", []))
            for name, model in self.models.items():
                if self.arn("model", name) == arn:
                    return list(model.get("Tags", []))
        return None

    def _run_transform(self, job: TransformJob) -> None:
        resources = job.request["TransformResources"]
        self.quotas.start(resources["InstanceType"], "transform", resources["InstanceCount"])
        try:
            self._transform(job)
            status = "Stopped" if job.stop.is_set() else "Completed"
        except Exception as exc:  # the job fails; CheckEvaluation reads FailureReason
            logger.exception("transform job %s failed", job.name)
            status, job.failure_reason = "Failed", f"ClientError: {type(exc).__name__}: {exc}"[:1024]
        with self.lock:
            job.status, job.ended = status, time.time()
        self.quotas.stop(resources["InstanceType"], "transform", resources["InstanceCount"])
        self.quotas.unreserve(resources["InstanceType"], "transform", resources["InstanceCount"])
        self.emit("transform_ended", job=job.name, status=status, reason=job.failure_reason)

    def _transform(self, job: TransformJob) -> None:
        s3 = self._s3()

        def read(uri: str) -> bytes:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

        request = job.request
        with self.lock:
            model = self.models[request["ModelName"]]
        predict = trainer.predictor(read(model["PrimaryContainer"]["ModelDataUrl"]))
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        if source["S3DataType"] != "ManifestFile":
            raise trainer.AlgorithmError(f"local mode transforms ManifestFile inputs only, not {source['S3DataType']}")
        head, *keys = json.loads(read(source["S3Uri"]))
        # CreateTransformJob: MaxPayloadInMB "must be greater than, or equal to, the size of a
        # single record"; 6 MB when not given (botocore's model of the API). Written here, not
        # imported from the pipeline, so the stand-in checks the pipeline.
        limit = request.get("MaxPayloadInMB", 6) * MB
        out_bucket, _, out_prefix = request["TransformOutput"]["S3OutputPath"].removeprefix("s3://").partition("/")
        for done, key in enumerate(keys, start=1):
            if job.stop.is_set():
                return
            record = read(head["prefix"] + key)
            if len(record) > limit:  # SingleRecord: one object is one record
                raise trainer.AlgorithmError(
                    f"{head['prefix']}{key}: a record of {len(record):,} bytes, more than MaxPayloadInMB ({limit // MB} MB)"
                )
            answer = json.dumps(predict(record)).encode()
            s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{key}.out", Body=answer)
            if done % 50 == 0 or done == len(keys):
                self.emit("transform_progress", job=job.name, done=done, total=len(keys))
