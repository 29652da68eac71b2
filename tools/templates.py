"""Every environment's synthesized templates, normalized so that two revisions can be diffed:
`python -m tools.templates OUT` writes OUT/<env>/<stack>.template.json.

Asset hashes (which change with any edit to the functions' code) are masked, and each state
machine's definition is parsed into the JSON object it is, so the order in which CDK happens to
list its states is not a difference. A refactor that changes nothing deployed leaves
`diff -r BEFORE AFTER` empty.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.synth import ROOT, synthesize

ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def _rendered(part: Any) -> str:
    """A part of an Fn::Join, intrinsic functions written as ${...}."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return "${" + str(part["Ref"]) + "}"
    if "Fn::GetAtt" in part:
        return "${" + ".".join(part["Fn::GetAtt"]) + "}"
    return "${" + json.dumps(part, sort_keys=True).replace('"', "'") + "}"


def normalized(template_text: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(ASSET_HASH.sub("<hash>", template_text))
    for resource in template.get("Resources", {}).values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            separator, parts = resource["Properties"]["DefinitionString"]["Fn::Join"]
            resource["Properties"]["DefinitionString"] = json.loads(separator.join(map(_rendered, parts)))
    return template


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:])[0])
    environments = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"]
    for env in environments:
        with tempfile.TemporaryDirectory() as assembly:
            synthesize(Path(assembly), env)
            for template in sorted(Path(assembly).glob("*.template.json")):
                (out / env).mkdir(parents=True, exist_ok=True)
                text = json.dumps(normalized(template.read_text()), indent=1, sort_keys=True)
                (out / env / template.name).write_text(text + "\n")
        sys.stdout.write(f"{env}: {out / env}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
