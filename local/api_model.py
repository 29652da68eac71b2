"""Check a request or response against botocore's own API model, strictly.

botocore validates types and required members but skips enums, lengths, ranges and name
patterns; SageMaker enforces them server-side. This checker walks the model's shapes and checks
those too, then the documented cross-field rules in `local.api_rules` (min <= max, scaling,
definitions vs early stopping and warm start, static vs tuned, spot wait). What it cannot know
(quotas, whether an image or role exists) it does not claim to check.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

from local.api_rules import semantic_errors


@cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


def _pattern(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path, errors)
    elif isinstance(shape, ListShape):
        _check_list(shape, value, path, errors)
    elif isinstance(shape, MapShape):
        _check_map(shape, value, path, errors)
    elif shape.type_name == "string":
        _check_string(shape, value, path, errors)
    elif shape.type_name in ("integer", "long", "float", "double"):
        _check_number(shape, value, path, errors)
    elif shape.type_name == "boolean" and not isinstance(value, bool):
        errors.append(f"{path}: expected a boolean")
    elif shape.type_name == "timestamp" and not isinstance(value, (datetime, str, int, float)):
        errors.append(f"{path}: expected a timestamp")


def _check_structure(shape: StructureShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object")
        return
    for name in shape.required_members:
        if name not in value:
            errors.append(f"{path}.{name}: required member missing")
    for name, item in value.items():
        if name not in shape.members:
            errors.append(f"{path}.{name}: unknown member")
            continue
        _check(shape.members[name], item, f"{path}.{name}", errors)


def _check_list(shape: ListShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{path}: expected a list")
        return
    _bounds(len(value), shape.metadata, path, "items", errors)
    for i, item in enumerate(value):
        _check(shape.member, item, f"{path}[{i}]", errors)


def _check_map(shape: MapShape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a map")
        return
    _bounds(len(value), shape.metadata, path, "entries", errors)
    for k, v in value.items():
        _check(shape.key, k, f"{path} key {k!r}", errors)
        _check(shape.value, v, f"{path}[{k!r}]", errors)


def _check_string(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{path}: expected a string, got {type(value).__name__}")
        return
    if shape.enum and value not in shape.enum:
        errors.append(f"{path}: {value!r} not in enum {shape.enum}")
    _bounds(len(value), shape.metadata, path, "characters", errors)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _pattern(pattern).fullmatch(value):
        errors.append(f"{path}: {value!r} does not match pattern {pattern}")


def _check_number(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    meta = shape.metadata
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append(f"{path}: expected a number")
        return
    if "min" in meta and value < meta["min"]:
        errors.append(f"{path}: {value} < min {meta['min']}")
    if "max" in meta and value > meta["max"]:
        errors.append(f"{path}: {value} > max {meta['max']}")


def _bounds(size: int, meta: dict[str, Any], path: str, unit: str, errors: list[str]) -> None:
    if "min" in meta and size < meta["min"]:
        errors.append(f"{path}: {size} {unit} < min {meta['min']}")
    if "max" in meta and size > meta["max"]:
        errors.append(f"{path}: {size} {unit} > max {meta['max']}")


def request_errors(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Every way `params` breaks the operation's input shape (botocore's checks and the rest), then
    the operation's documented cross-field rules once the shape is right."""
    op = operation_model(service, operation)
    errors: list[str] = []
    report = ParamValidator().validate(params, op.input_shape)
    if report.has_errors():
        errors.append(report.generate_report())
    _check(op.input_shape, params, operation, errors)
    if not errors and service == "sagemaker":
        errors.extend(semantic_errors(operation, params))
    return errors


def response_errors(service: str, operation: str, response: dict[str, Any]) -> list[str]:
    """Every way `response` breaks the operation's output shape."""
    op = operation_model(service, operation)
    errors: list[str] = []
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    _check(op.output_shape, body, operation, errors)
    return errors
