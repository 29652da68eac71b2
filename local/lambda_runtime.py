"""Local mode's Lambda runtime: each function's real handler, run in-process by moto's Lambda
service, with its log lines in a file (CloudWatch Logs' stand-in) and its errors reported as
Lambda reports them (a function error named after the exception's class)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

_INVOKE_LOCK = threading.Lock()


class _LogSink:
    """Where the handlers' log lines go (CloudWatch Logs' stand-in): a file, not the console.

    Powertools binds its stream once, at import: this object stays, its target changes."""

    def __init__(self) -> None:
        self.target: Any = None

    def write(self, text: str) -> int:
        if self.target is not None and not self.target.closed:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        if self.target is not None and not self.target.closed:
            self.target.flush()


LAMBDA_LOGS = _LogSink()


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def run_handler(function: Any, payload: bytes | str | None) -> tuple[bytes, bool]:
    """Invoke the function's real handler in-process.

    The functions' synthesized environments were merged into os.environ at deploy (they agree
    on every shared key, which deploy checks): os.environ is never resized while other threads
    read it, which would break them."""
    event = json.loads(payload) if payload else {}
    module_name, _, attribute = function.handler.rpartition(".")
    with _INVOKE_LOCK:
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.function_name
        try:
            with contextlib.redirect_stdout(LAMBDA_LOGS):  # type: ignore[type-var]
                handler = getattr(importlib.import_module(module_name), attribute)
                context = LambdaContext(function.function_name, invoked_function_arn=function.function_arn)
                return json.dumps(handler(event, context)).encode(), False
        except Exception as exc:  # Lambda reports it as a function error named after the class
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            return json.dumps(error).encode(), True


def invoke(
    self: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    function = self.get_function(function_name, qualifier)
    payload, errored = run_handler(function, body)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
