"""A local SageMaker that really trains: tuning and training jobs, the model registry, models and
batch transforms, and the account's quotas, one part per kind of resource (see base.py).

Operations take and return the API's JSON shapes (checked against botocore's model in the
tests). Tuning jobs run in background threads; each training job trains on the CPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from local.api_model import request_errors
from local.sagemaker.base import ACCOUNT, ApiError
from local.sagemaker.quotas import AccountQuotas
from local.sagemaker.registry import ModelRegistry
from local.sagemaker.training import TrainingRuns
from local.sagemaker.transform import TransformJobs


class LocalSageMaker(TrainingRuns, ModelRegistry, TransformJobs):
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
        self.listeners = []
        self.threads = []
        self.tuning_jobs, self.training_jobs = {}, {}  # tuning.py
        self._data_cache, self._fetched, self.training_faults = {}, {}, []  # training.py
        self.groups, self.packages, self.tokens = {}, {}, {}  # registry.py
        self.models, self.transform_jobs = {}, {}  # transform.py
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[tuple[str, int]]] = {}

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
