"""Operator tools: what the team that deploys the stack and the people who upload datasets run.

    python -m tools.dataset prepare|upload ...   a folder of class folders -> the dataset layout -> S3
    python -m tools.plan prepared/manifest.json  what a manifest would do, touching nothing
    python -m tools.runs --env dev               runs holding and waiting for slots, the month's spend
    python -m tools.manifest_schema              the manifest's JSON Schema
    python -m tools.synth --env dev              the cloud assembly, without the CDK CLI

They need requirements-tools.txt only (no torch, no optuna): `make dataset`, `make plan` and
`make deploy` install that alone. The Lambda code root (`lambdas/`) is importable from here, as in the functions.
"""

import importlib.util
import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if importlib.util.find_spec("pipeline") is None and _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
