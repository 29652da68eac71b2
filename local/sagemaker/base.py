"""What the local SageMaker's parts share: its errors, its account, and the state they work on.

The service (service.py) is one object made of these parts, one per kind of resource: tuning
and training jobs (tuning.py), each training job's run and the channels it reads (training.py),
the search that asks for the jobs (search.py), the model registry (registry.py), models and batch
transforms (transform.py), and the account's quotas (quotas.py). The CPU stand-in for the
algorithm's container is trainer.py; server.py serves it all over HTTP. Every request reaches them through `LocalSageMaker.call`, which checks it
against botocore's model first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local.sagemaker.quotas import AccountQuotas

ACCOUNT = "123456789012"
Listener = Callable[[str, dict[str, Any]], None]


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Part:
    """The state every part reads: set once by LocalSageMaker.__init__, shared by all parts."""

    region: str
    seed: int
    lock: threading.RLock
    quotas: AccountQuotas
    threads: list[threading.Thread]
    listeners: list[Listener]
    _s3: Callable[[], Any]

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{kind}/{name.lower()}"

    def emit(self, event: str, **detail: Any) -> None:
        for listener in list(self.listeners):
            listener(event, detail)
