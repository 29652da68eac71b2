"""Read the synthesized cloud assembly: templates, state machine definitions, rule patterns.

CloudFormation intrinsics in a definition (`Fn::Join`, `Ref`, `Fn::GetAtt`, pseudo parameters)
are resolved through a caller-given function, so the same reader serves the tests (fake ARNs)
and local mode (the ARNs of local resources).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Resolver = Callable[[str, str | None], str]  # (logical id or pseudo parameter, attribute) -> value


def load_template(outdir: Path, stack_name: str) -> dict[str, Any]:
    return json.loads((outdir / f"{stack_name}.template.json").read_text())


def resolve(value: Any, resolver: Resolver) -> Any:
    if isinstance(value, dict):
        if "Ref" in value:
            return resolver(value["Ref"], None)
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return resolver(logical_id, attribute)
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(resolve(p, resolver)) for p in parts)
        if "Fn::ImportValue" in value:
            return resolver(f"Import:{resolve(value['Fn::ImportValue'], resolver)}", None)
        return {k: resolve(v, resolver) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, resolver) for v in value]
    return value


def resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def state_machine_definitions(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, Any]]:
    """Logical id -> the Amazon States Language document, with intrinsics resolved."""
    out = {}
    for logical_id, resource in resources_of_type(template, "AWS::StepFunctions::StateMachine").items():
        props = resource["Properties"]
        raw = props.get("DefinitionString") or json.dumps(props["Definition"])
        text = resolve(raw, resolver)
        substitutions = props.get("DefinitionSubstitutions", {})
        for key, sub in substitutions.items():
            text = text.replace("${" + key + "}", str(resolve(sub, resolver)))
        out[logical_id] = json.loads(text)
    return out


def pseudo_parameters(account: str, region: str) -> dict[str, str]:
    """CloudFormation's pseudo parameters for a commercial-partition account and region."""
    return {
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "stack",
    }


def fake_resolver(account: str = "123456789012", region: str = "us-east-1") -> Resolver:
    """Plausible ARNs for every reference: enough for linters and schema checks."""

    def resolver(name: str, attribute: str | None) -> str:
        pseudo = pseudo_parameters(account, region)
        if name in pseudo:
            return pseudo[name]
        if attribute == "Arn" or attribute is None and "Function" in name:
            return f"arn:aws:lambda:{region}:{account}:function:{name}"
        if "Topic" in name or "Notifications" in name:
            return f"arn:aws:sns:{region}:{account}:{name}"
        return name

    return resolver
