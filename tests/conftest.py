"""Shared fixtures: the app is synthesized once per test run, for every test that reads it."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def cdk_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    built: object
    outdir: Path
    storage_template: dict
    pipeline_template: dict


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import App

    from stacks.app_builder import build

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context(), outdir=str(outdir))
    built = build(app, env_name="dev")
    app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    return Synth(
        built=built,
        outdir=outdir,
        storage_template=json.loads((outdir / f"{built.storage.stack_name}.template.json").read_text()),
        pipeline_template=json.loads((outdir / f"{built.pipeline.stack_name}.template.json").read_text()),
    )


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The app synthesized with the `local` environment, for local-mode tests."""
    from tools.synth import synthesize

    outdir = tmp_path_factory.mktemp("local-cdk.out")
    return outdir, synthesize(outdir, "local")


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from local.sample import build_sample

    return build_sample(tmp_path_factory.mktemp("sample") / "digits")


@pytest.fixture(scope="module")
def small_images(sample_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 20 digits: enough to train one epoch in well under a second."""
    root = tmp_path_factory.mktemp("small") / "images"
    for label in ("digit_0", "digit_1", "digit_7"):
        (root / label).mkdir(parents=True)
        for path in sorted((sample_images / label).iterdir())[:20]:
            shutil.copy(path, root / label / path.name)
    return root


class Logged(logging.Handler):
    """The records the handlers' Logger wrote: what an operator reads in CloudWatch Logs."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: str = "WARNING") -> list[tuple[str, dict]]:
        """(message, the extra keys it carries) of each record at `level`."""
        plain = set(vars(logging.makeLogRecord({})))
        return [
            (r.getMessage(), {k: v for k, v in vars(r).items() if k not in plain and not k.startswith("_")})
            for r in self.records
            if r.levelname == level
        ]


@pytest.fixture
def logged() -> Iterator[Logged]:
    from pipeline.aws.telemetry import SERVICE

    handler = Logged()
    logging.getLogger(SERVICE).addHandler(handler)
    yield handler
    logging.getLogger(SERVICE).removeHandler(handler)


@pytest.fixture
def db() -> Iterator[object]:
    """moto's DynamoDB with a table of the governance table's key schema, named "gov"."""
    import boto3
    from moto import mock_aws

    from local.deploy import governance_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        governance_table(client, "gov")
        yield client
