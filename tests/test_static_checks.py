"""Linters on what was synthesized: cfn-lint on every template, statelint on every workflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from local.assembly import fake_resolver, state_machine_definitions


def test_cfn_lint_finds_nothing(synth) -> None:
    templates = sorted(str(p) for p in Path(synth.outdir).glob("*.template.json"))
    assert len(templates) == 2
    # W3005: CDK itself adds DependsOn from each function to its role's policy, on purpose
    # (the policy must exist before the function runs); cfn-lint calls that redundant.
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    result = subprocess.run(
        [cfn_lint, "--format", "parseable", "--ignore-checks", "W3005", "--", *templates],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_accepts_every_state_machine(synth, tmp_path: Path) -> None:
    definitions = state_machine_definitions(synth.pipeline_template, fake_resolver())
    assert definitions
    for logical_id, asl in definitions.items():
        path = tmp_path / f"{logical_id}.asl.json"
        path.write_text(json.dumps(asl))
        # FLOAT: CDK (JavaScript) writes BackoffRate 2.0 as 2, which Step Functions accepts.
        result = subprocess.run(
            [sys.executable, "-m", "statelint", "--ignore=FLOAT", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{logical_id}: {result.stdout}{result.stderr}"


def test_statelint_rejects_a_broken_definition(tmp_path: Path) -> None:
    # The check can fail: a Choice without Choices is reported.
    path = tmp_path / "broken.asl.json"
    path.write_text(
        json.dumps({"StartAt": "A", "States": {"A": {"Type": "Choice", "Default": "B"}, "B": {"Type": "Succeed"}}})
    )
    result = subprocess.run([sys.executable, "-m", "statelint", str(path)], capture_output=True, text=True)
    assert result.returncode != 0
