"""Serve LocalSageMaker over HTTP with SageMaker's JSON protocol, so boto3 talks to it unchanged;
and the local account's SageMaker quotas with Service Quotas' (the same JSON 1.1 protocol).

Point a client at it with `AWS_ENDPOINT_URL_SAGEMAKER=http://127.0.0.1:<port>` (and
`AWS_ENDPOINT_URL_SERVICE_QUOTAS`, the same address): botocore then
serializes every request from the real API model and parses every answer the same way.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.sagemaker.base import ApiError
from local.sagemaker.quotas import TARGET_PREFIX, QuotaError
from local.sagemaker.service import LocalSageMaker

logger = logging.getLogger("local.sagemaker.http")


def _handler_for(service: LocalSageMaker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            target = self.headers.get("X-Amz-Target", "")
            operation = target.partition(".")[2]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            try:
                params = json.loads(body or b"{}")
                if target.startswith(TARGET_PREFIX):  # Service Quotas: the local account's quotas
                    status, payload = 200, service.quota_call(operation, params)
                else:
                    status, payload = 200, service.call(operation, params)
            except ApiError as exc:
                status, payload = exc.status, {"__type": exc.code, "message": exc.message}
            except QuotaError as exc:
                status, payload = 400, {"__type": exc.code, "message": exc.message}
            except Exception as exc:
                logger.exception("local SageMaker failed on %s", operation)
                status, payload = 500, {"__type": "InternalFailure", "message": str(exc)}
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "local")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug(format, *args)

    return Handler


class SageMakerServer:
    """A LocalSageMaker listening on 127.0.0.1 (an ephemeral port) in a daemon thread."""

    def __init__(self, service: LocalSageMaker) -> None:
        self.service = service
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(service))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="local-sagemaker", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> SageMakerServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
