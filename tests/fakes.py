"""Hand-written fakes held to what a real client checks before it sends anything.

A fake that answers whatever it is asked proves little: a handler that sends TransformJobName=None,
drops a required member or pages with PageSize=101 would pass against it. A fake that subclasses
`Fake` (and names its `SERVICE`) has every call put through botocore's model of the operation,
with our stricter checks (enums, lengths, name patterns: local.api_model), and every paginator's
page size through the operation's documented maximum. The fake's answers are its own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore import xform_name

from local.api_model import request_errors, service_model


@cache
def operations(service: str) -> dict[str, str]:
    """Client method name -> operation name: describe_transform_job -> DescribeTransformJob."""
    return {xform_name(name): name for name in service_model(service).operation_names}


@cache
def limit_key(service: str, operation: str) -> str | None:
    """The request member a paginator's PageSize becomes (MaxResults, MaxKeys...)."""
    model = botocore.session.get_session().get_paginator_model(service)
    return model.get_paginator(operation).get("limit_key")


def check(service: str, method: str, params: dict[str, Any]) -> None:
    problems = request_errors(service, operations(service)[method], params)
    assert not problems, f"{service}.{method} would be refused by the client or the service: {problems}"


class Pages:
    def __init__(self, paginator: Any, service: str, method: str) -> None:
        self.paginator, self.service, self.method = paginator, service, method

    def paginate(self, **kwargs: Any) -> Any:
        config = dict(kwargs.get("PaginationConfig") or {})
        assert set(config) <= {"MaxItems", "PageSize", "StartingToken"}, f"unknown PaginationConfig {config}"
        params = {k: v for k, v in kwargs.items() if k != "PaginationConfig"}
        key = limit_key(self.service, operations(self.service)[self.method])
        if "PageSize" in config and key:
            params[key] = config["PageSize"]
        check(self.service, self.method, params)
        return self.paginator.paginate(**kwargs)


class Fake:
    """Base of a hand-written client fake: its methods named after `SERVICE`'s operations are
    called only with requests the real client would send (see the module docstring)."""

    SERVICE = "sagemaker"

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        service = type(self).SERVICE
        if name == "get_paginator":
            return lambda method: Pages(attr(method), service, method)
        if name not in operations(service) or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            assert not args, f"{name}: boto3 clients take keyword arguments only"
            check(service, name, kwargs)
            return attr(**kwargs)

        return call
