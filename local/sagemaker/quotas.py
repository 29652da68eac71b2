"""The local account's SageMaker quotas: one place that both refuses what would exceed them, the
way SageMaker refuses it, and answers Service Quotas' ListServiceQuotas and GetServiceQuota.

What SageMaker does at a quota, from its own words and the field's reports:
- a request that would exceed an instance quota is refused with ResourceLimitExceeded, "The
  account-level service limit '<type> for training job usage' is N Instances, with current
  utilization of M Instances and a request delta of K Instances" (the message quoted in
  aws/amazon-sagemaker-examples#1543 and #307, and in the governance issue of this project);
- CreateHyperParameterTuningJob is checked against its whole parallel reservation: the request
  delta is MaxParallelTrainingJobs x InstanceCount, held while the tuning job runs, so with a
  quota of 2 a second tuning job of 2 parallel jobs is refused at creation, not later;
- a batch transform is checked the same way at CreateTransformJob, against "<type> for transform
  job usage", for its InstanceCount.

Not modelled: training outside this pipeline using the same quota (then a tuning job's own
training jobs can meet the limit, amazon-sagemaker-examples#1543: "current utilization of 3
Instances"), and the minutes an instance stays counted after its job ends.

moto's Service Quotas knows no SageMaker quota (it answers NoSuchResourceException), so local
mode serves these names from here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from typing import Any

SERVICE_CODE = "sagemaker"
TARGET_PREFIX = "ServiceQuotasV20190624."


class QuotaError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def limit_message(name: str, limit: int, used: int, delta: int) -> str:
    return (
        f"The account-level service limit '{name}' is {limit} Instances, with current utilization of {used} "
        f"Instances and a request delta of {delta} Instances. Please use AWS Service Quotas to request an "
        "increase for this quota."
    )


class AccountQuotas:
    """Applied quota values by name ("ml.g4dn.xlarge for training job usage": 2); a name not set is
    not limited here (and not listed by Service Quotas). Tracks the instances in use per quota and
    the most ever in use at once."""

    def __init__(self, values: dict[str, int] | None = None) -> None:
        self.values = dict(values or {})
        self.lock = threading.Lock()
        self.reserved: dict[str, int] = defaultdict(int)  # by quota name: tuning jobs' reservations
        self.running: dict[str, int] = defaultdict(int)  # by quota name: instances of running jobs
        self.peak_running: dict[str, int] = defaultdict(int)

    @staticmethod
    def name(instance_type: str, usage: str) -> str:
        return f"{instance_type} for {usage} job usage"

    def reserve(self, instance_type: str, usage: str, delta: int) -> None:
        """Take `delta` instances for a job's lifetime, or raise ResourceLimitExceeded."""
        name = self.name(instance_type, usage)
        with self.lock:
            limit, used = self.values.get(name), self.reserved[name]
            if limit is not None and used + delta > limit:
                raise QuotaError("ResourceLimitExceeded", limit_message(name, limit, used, delta))
            self.reserved[name] += delta

    def unreserve(self, instance_type: str, usage: str, delta: int) -> None:
        with self.lock:
            self.reserved[self.name(instance_type, usage)] -= delta

    def start(self, instance_type: str, usage: str, count: int) -> None:
        """A job's instances start running (within its reservation): counted, for the peak."""
        name = self.name(instance_type, usage)
        with self.lock:
            self.running[name] += count
            self.peak_running[name] = max(self.peak_running[name], self.running[name])

    def stop(self, instance_type: str, usage: str, count: int) -> None:
        with self.lock:
            self.running[self.name(instance_type, usage)] -= count

    # ------------------------------------------------------------------ Service Quotas

    def code(self, name: str) -> str:
        return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()

    def _quota(self, name: str, region: str, account: str) -> dict[str, Any]:
        code = self.code(name)
        return {
            "ServiceCode": SERVICE_CODE,
            "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:aws:servicequotas:{region}:{account}:{SERVICE_CODE}/{code}",
            "QuotaCode": code,
            "QuotaName": name,
            "Value": float(self.values[name]),
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }

    def call(self, operation: str, params: dict[str, Any], region: str, account: str) -> dict[str, Any]:
        if params.get("ServiceCode") != SERVICE_CODE:
            raise QuotaError("NoSuchResourceException", f"local mode serves only the {SERVICE_CODE} quotas")
        names = sorted(self.values)
        if operation == "ListServiceQuotas":
            start, size = int(params.get("NextToken") or 0), int(params.get("MaxResults") or 100)
            page = names[start : start + size]
            answer: dict[str, Any] = {"Quotas": [self._quota(n, region, account) for n in page]}
            if start + size < len(names):
                answer["NextToken"] = str(start + size)
            return answer
        if operation == "GetServiceQuota":
            by_code = {self.code(n): n for n in names}
            if params.get("QuotaCode") not in by_code:
                raise QuotaError("NoSuchResourceException", f"no quota {params.get('QuotaCode')}")
            return {"Quota": self._quota(by_code[params["QuotaCode"]], region, account)}
        raise QuotaError("UnknownOperationException", f"local Service Quotas does not implement {operation}")
