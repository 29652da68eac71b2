#!/usr/bin/env python3
"""CDK entry point: read the configuration, build the stacks, run cdk-nag, synthesize."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from aws_cdk import App  # noqa: E402

from stacks.app_builder import build  # noqa: E402

app = App()
build(app, env_name=app.node.try_get_context("env") or "dev")
app.synth()
