"""The committed JSON Schema of a manifest: in sync with the settings schema, and never
stricter than validation (an editor must not flag a manifest the pipeline would accept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.aws.errors import DatasetError
from pipeline.dataset.manifest import parse_manifest
from pipeline.settings.trust import DEPLOYMENT, OWNERSHIP
from pipeline.settings.tuning_settings import TuningSettings
from tools.manifest_schema import manifest_schema

COMMITTED = Path(__file__).resolve().parents[1] / "schema" / "manifest.schema.json"
# A generous deployment, so that the only reasons to refuse are the value's own.
DEPLOYMENT_SETTINGS = TuningSettings.from_mapping(
    {
        "max_training_jobs": 750,
        "max_parallel_jobs": 100,
        "max_runtime_seconds": 2_419_200,
        "instance_type": "ml.p3.2xlarge",  # EBS-backed: volume_size_gb up to 16 TiB
        "volume_size_gb": 16_384,
        "allowed_instance_types": ["ml.g4dn.xlarge", "ml.p3.2xlarge", "ml.g5.2xlarge", "ml.p3dn.24xlarge"],
        "use_pretrained_model": False,
    },
    where="test deployment",
)


def schema_errors(manifest: Any) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(manifest_schema()).iter_errors(manifest)]


def pipeline_accepts(manifest: dict[str, Any]) -> bool:
    try:
        parse_manifest(json.dumps(manifest), "m.json", DEPLOYMENT_SETTINGS)
    except DatasetError:
        return False
    return True


def test_the_committed_schema_is_the_generated_one() -> None:
    assert json.loads(COMMITTED.read_text()) == manifest_schema(), "run: python -m tools.manifest_schema > " + str(
        COMMITTED.relative_to(COMMITTED.parents[1])
    )
    jsonschema.Draft202012Validator.check_schema(manifest_schema())


def test_the_schema_offers_exactly_the_keys_a_manifest_may_set() -> None:
    offered = set(manifest_schema()["properties"]["tuning"]["properties"])
    assert offered == {key for key, owner in OWNERSHIP.items() if owner != DEPLOYMENT}
    assert "price_per_hour_usd" not in offered and "approval" not in offered


@pytest.mark.parametrize(
    ("manifest", "complaint"),
    [
        ({}, "'format' is a required property"),
        ({"format": "png"}, "'png' is not one of ['image', 'recordio', 'augmented_manifest']"),
        ({"format": "image", "label_attribute": "source-ref"}, "should not be valid"),
        ({"format": "recordio", "num_classes": 3}, "'num_training_samples' is a required property"),
        ({"format": "image", "tuning": {"layout": "jobs"}}, "'jobs' is not one of"),
        ({"format": "image", "tuning": {"max_training_jobs": 0}}, "0 is less than the minimum of 1"),
        ({"format": "image", "tuning": {"ranges": {"learning_rate": {"maxi": 1}}}}, "Additional properties"),
        ({"format": "image", "tuning": {"approval": {"mode": "auto"}}}, "Additional properties"),
        (
            {"format": "image", "tuning": {"optimizer_ranges": {"sgd": {"beta_1": {"max": 0.5}}}}},
            "Additional properties",
        ),
        ({"format": "image", "tuning": {"instance_type": "ml.m5.xlarge"}}, "'ml.m5.xlarge' is not one of"),
    ],
)
def test_the_schema_flags_what_validation_refuses(manifest: dict[str, Any], complaint: str) -> None:
    assert any(complaint in e for e in schema_errors(manifest)), schema_errors(manifest)
    assert not pipeline_accepts(manifest)


INTS = st.sampled_from([-1, 0, 1, 2, 3, 8, 18, 50, 100, 119, 120, 600, 750, 751, 1000, 1001, 3600, 2_419_200])
FLOATS = st.sampled_from([0.0, 1e-6, 1e-3, 0.05, 0.5, 0.9, 0.999, 1.0, 1.5, 2.0])
WORDS = st.sampled_from(
    ["Bayesian", "Random", "Hyperband", "Grid", "Off", "Auto", "flat", "definitions", "job_per_optimizer", "jobs"]
    + ["float16", "float32", "documented", "measured", "seed", "3,224,224", "3,32,32", " 3, 32,32 ", "32x32"]
    + ["ml.g4dn.xlarge", "ml.g5.2xlarge", "ml.p3.2xlarge", "ml.m5.xlarge", "sgd", "adam"]
)
RANGE = st.fixed_dictionaries(
    {},
    optional={
        "min": FLOATS,
        "max": FLOATS,
        "scaling": st.sampled_from(["Auto", "Linear", "Logarithmic", "ReverseLogarithmic", "log"]),
    },
)


def json_values() -> st.SearchStrategy[Any]:
    """Values of every shape a tuning key takes, near its bounds and around its enums."""
    return st.one_of(
        st.none(),
        st.booleans(),
        INTS,
        FLOATS,
        WORDS,
        st.lists(st.sampled_from(["sgd", "adam", "rmsprop", "nag", "lion"]), max_size=4),
        st.lists(st.sampled_from(["ml.g5.2xlarge", "ml.m5.xlarge"]), max_size=2),
        st.dictionaries(st.sampled_from(["learning_rate", "eps", "weight_decay", "mini_batch_size", "foo"]), RANGE),
        st.fixed_dictionaries(
            {},
            optional={
                "target_accuracy": st.one_of(st.none(), FLOATS),
                "max_jobs_not_improving": st.one_of(st.none(), INTS),
                "complete_on_convergence": st.booleans(),
            },
        ),
    )


@settings(max_examples=1500, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(k for k, o in OWNERSHIP.items() if o != DEPLOYMENT)), value=json_values())
def test_whatever_validation_accepts_the_schema_accepts(key: str, value: Any) -> None:
    manifest = {"format": "image", "tuning": {key: value}}
    if pipeline_accepts(manifest):
        assert schema_errors(manifest) == []


VALID = {
    "strategy": "Random",
    "early_stopping": {"early_stopping": "Auto", "layout": "flat"},
    "epochs": 15,
    "num_layers": 50,
    "image_shape": " 3, 64,64 ",
    "use_pretrained_model": False,
    "precision_dtype": "float16",
    "layout": "job_per_optimizer",
    "optimizers": ["adam", "sgd"],
    "preset": "documented",
    "ranges": {"learning_rate": {"max": 0.1, "scaling": "Logarithmic"}},
    "optimizer_ranges": {"sgd": {"weight_decay": {"max": 0.01}}, "rmsprop": {"eps": {"min": 0.01}}},
    "completion": {"target_accuracy": 0.95, "max_jobs_not_improving": None},
    "warm_start": {"warm_start": "off", "layout": "flat"},  # a manifest may only narrow it
    "max_training_jobs": {"max_training_jobs": 10, "max_parallel_jobs": 2},
    "max_parallel_jobs": 2,
    "max_runtime_seconds": 600,
    "max_wait_seconds": 1200,
    "volume_size_gb": 30,
    "use_spot": True,
    "max_cost_usd": 5.5,
    "instance_type": {"instance_type": "ml.g5.2xlarge", "volume_size_gb": 100},  # within its NVMe disk
}


def test_every_key_a_manifest_may_set_has_a_value_both_accept() -> None:
    with_schema = {"$schema": "../schema/manifest.schema.json", "format": "image"}
    assert pipeline_accepts(with_schema) and schema_errors(with_schema) == []
    assert set(VALID) == {key for key, owner in OWNERSHIP.items() if owner != DEPLOYMENT}
    for key, value in VALID.items():  # a dict: the key with the keys it needs beside it
        tuning = value if isinstance(value, dict) and key in value else {key: value}
        manifest = {"format": "image", "tuning": tuning}
        assert pipeline_accepts(manifest), key
        assert schema_errors(manifest) == [], key
