"""Details a mutation run showed unguarded: names, static hyperparameters, caps, boundaries.

Each expected value is written out from the rule it checks.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from pipeline.aws.errors import BudgetExceeded, DatasetError, SettingsError
from pipeline.aws.image_uri import dns_suffix
from pipeline.dataset.lst import LstEntry, check_labels
from pipeline.dataset.manifest import dataset_ref_from_key
from pipeline.settings import limits
from pipeline.settings.search_space import NumericRange
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.cost import Estimate, check_budget, hourly_price, price_table
from pipeline.tuning.naming import run_id
from pipeline.tuning.request import Destinations, build_tuning_requests, effective_range
from tests.sample_request import facts

DATA = facts(
    format="image",
    num_classes=10,
    num_training_samples=1437,
    channels={"train": "s3://ds/datasets/d/train/", "validation": "s3://ds/datasets/d/validation/"},
    content_type="application/x-image",
)
DEST = Destinations(
    role_arn="arn:aws:iam::123456789012:role/sm",
    image_uri="img:1",
    output_uri="s3://art/tuning/d/r/",
    checkpoint_uri="s3://art/checkpoints/d/r/",
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@pytest.mark.parametrize(
    ("dataset", "slug"),
    [
        ("Flowers_2024 set!", "flowers-2024-set"),  # lower case, one '-' for each run of others
        ("--abc--", "abc"),  # no leading or trailing '-'
        ("abcdefghijklmno-pq", "abcdefghijklmno"),  # cut to 16, then no trailing '-'
        ("ABCDEFGHIJKLMNOPQRSTU", "abcdefghijklmnop"),  # 32 - 5 (suffix room) - 1 - 10 = 16
        ("___", "ds"),  # nothing usable: a placeholder
    ],
)
def test_run_ids_are_a_readable_slug_and_a_digest_of_the_upload(dataset: str, slug: str) -> None:
    assert run_id("bucket", dataset, "v1") == f"{slug}-{digest(f'bucket/{dataset}@v1')}"


def test_static_hyperparameters_are_exactly_these() -> None:
    settings = TuningSettings.from_mapping(
        {"layout": "flat", "epochs": 12, "num_layers": 50, "precision_dtype": "float16"}, where="t"
    )
    (request,) = build_tuning_requests("r", settings, DATA, DEST)
    definition = request["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {
        "num_classes": "10",
        "num_training_samples": "1437",
        "epochs": "12",
        "num_layers": "50",
        "image_shape": "3,224,224",
        "use_pretrained_model": "1",
        "precision_dtype": "float16",
        "resize": "256",
    }
    assert definition["ResourceConfig"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}


def test_flat_spot_checkpoints_go_straight_under_the_run() -> None:
    settings = TuningSettings.from_mapping({"layout": "flat", "use_spot": True}, where="t")
    (request,) = build_tuning_requests("r", settings, DATA, DEST)
    assert request["TrainingJobDefinition"]["CheckpointConfig"] == {"S3Uri": "s3://art/checkpoints/d/r/"}


def test_mini_batch_size_is_capped_only_above_the_training_images_and_keeps_its_scaling() -> None:
    r = NumericRange("mini_batch_size", "Integer", 8, 512, "Logarithmic")
    exactly = dataclasses.replace(DATA, num_training_samples=512)
    assert effective_range(r, exactly) is r
    assert effective_range(r, dataclasses.replace(DATA, num_training_samples=100)) == NumericRange(
        "mini_batch_size", "Integer", 8, 100, "Logarithmic"
    )
    lr = NumericRange("learning_rate", "Continuous", 1e-6, 0.5)
    assert effective_range(lr, dataclasses.replace(DATA, num_training_samples=0)) is lr


def test_warm_start_takes_at_most_five_parents_and_never_with_definitions() -> None:
    flat = TuningSettings.from_mapping({"layout": "flat", "warm_start": True}, where="t")
    parents = {"r": [f"old-{i}" for i in range(7)]}
    (request,) = build_tuning_requests("r", flat, DATA, DEST, warm_start_parents=parents)
    assert [p["HyperParameterTuningJobName"] for p in request["WarmStartConfig"]["ParentHyperParameterTuningJobs"]] == [
        "old-0",
        "old-1",
        "old-2",
        "old-3",
        "old-4",
    ]
    definitions = dataclasses.replace(flat, layout="definitions")  # bypasses the settings check on purpose
    (request,) = build_tuning_requests("r", definitions, DATA, DEST, warm_start_parents=parents)
    assert "WarmStartConfig" not in request


def test_two_classes_are_enough_and_a_gap_is_named() -> None:
    two = [LstEntry(1, 0, 0, "a.png"), LstEntry(2, 1, 1, "b.png")]
    assert check_labels(two, "x.lst") == 2
    gaps = [LstEntry(i, i, label, f"{i}.png") for i, label in enumerate([0, *range(12, 30)])]
    with pytest.raises(DatasetError, match=r"missing \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]\. Renumber"):
        check_labels(gaps, "x.lst")


def test_the_poll_budget_is_what_the_quota_leaves() -> None:
    # (25,000 x 0.8 - 400) // 9 = 2,177 iterations, less the one that sees the end.
    assert limits.max_polls() == 2176


@pytest.mark.parametrize(("value", "expected"), [(None, None), (120, 120), (7200, 7200)])
def test_max_wait_is_optional_and_at_least_two_minutes(value: int | None, expected: int | None) -> None:
    assert TuningSettings.from_mapping({"max_wait_seconds": value}, where="t").max_wait_seconds == expected


@pytest.mark.parametrize(("value", "message"), [(119, "must be >= 120, got 119"), ("7200", "must be an integer")])
def test_a_bad_max_wait_names_the_key(value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=f"t: key 'max_wait_seconds' {message}"):
        TuningSettings.from_mapping({"max_wait_seconds": value}, where="t")


def test_the_estimate_shown_in_the_execution_output() -> None:
    estimate = Estimate(worst_case_usd=29.4449, price_per_hour_usd=0.736, basis="b", instance_hours=40.004)
    assert estimate.to_dict() == {
        "worst_case_usd": 29.44,
        "price_per_hour_usd": 0.736,
        "instance_hours": 40.0,
        "basis": "b",
    }


@pytest.mark.parametrize(
    ("region", "suffix"),
    [("cn-future-9", "amazonaws.com.cn"), ("eu-future-9", "amazonaws.com"), ("us-gov-west-1", "amazonaws.com")],
)
def test_a_region_botocore_does_not_list_yet_gets_its_partitions_domain(region: str, suffix: str) -> None:
    assert dns_suffix(region) == suffix


def test_a_region_of_no_partition_is_named() -> None:
    with pytest.raises(ValueError, match="region 'zz-moon-1' belongs to no known AWS partition"):
        dns_suffix("zz-moon-1")


@pytest.mark.parametrize(
    "key",
    ["datasets/x/other.json", "other/x/manifest.json", "datasets/manifest.json", "datasets/x/y/manifest.json"],
)
def test_only_a_manifest_directly_under_a_dataset_is_a_dataset(key: str) -> None:
    with pytest.raises(DatasetError) as raised:
        dataset_ref_from_key("b", key, "v1")
    assert str(raised.value) == (
        f"s3://b/{key}: not a dataset manifest. The pipeline starts only for "
        "'datasets/<name>/manifest.json'; upload the manifest there, last."
    )


def test_a_bad_dataset_name_is_named_with_the_rule() -> None:
    with pytest.raises(DatasetError) as raised:
        dataset_ref_from_key("b", "datasets/-x/manifest.json", "v1")
    assert str(raised.value) == (
        "s3://b/datasets/-x/manifest.json: dataset name '-x' must be 1-64 letters, digits, '-' or '_', "
        "starting with a letter or digit. Rename the prefix."
    )


def test_every_known_instance_type_has_a_price() -> None:
    assert set(limits.TRAINING_INSTANCES) == set(price_table()["prices"])


def test_the_price_basis_says_where_it_is_approximate() -> None:
    settings = TuningSettings()
    assert hourly_price(settings, "us-east-1") == (0.736, "us-east-1 list price of 2026-11-28")
    assert (
        hourly_price(settings, "eu-west-1")[1] == "us-east-1 list price of 2026-11-28 (run in eu-west-1: approximate)"
    )


def test_the_budget_refusal_in_full() -> None:
    settings = TuningSettings.from_mapping({"max_cost_usd": 10, "max_training_jobs": 20}, where="t")
    with pytest.raises(BudgetExceeded) as raised:
        check_budget(settings, "eu-west-1", "m")
    assert str(raised.value) == (
        "m: worst-case cost $14.72 (20 training jobs x 3600 s x $0.736/h, us-east-1 list price of 2026-11-28 "
        "(run in eu-west-1: approximate)) is above max_cost_usd $10.00. Lower tuning.max_training_jobs or "
        "tuning.max_runtime_seconds, pick a cheaper instance_type, or raise max_cost_usd in cdk.json. "
        "Nothing was started."
    )


def test_the_trust_boundary_messages_in_full() -> None:
    deployment = TuningSettings.from_mapping({"max_training_jobs": 10}, where="cdk")
    with pytest.raises(SettingsError) as owned:
        TuningSettings.from_manifest({"poll_seconds": 5}, where="m", deployment=deployment)
    assert str(owned.value) == (
        "m: key 'poll_seconds' is owned by the deployment: cdk.json (the environment's 'tuning' block) sets it "
        "for every dataset, and a manifest cannot. Remove 'poll_seconds' from the manifest; to change it, the "
        "team that deploys the stack edits cdk.json and redeploys."
    )
    with pytest.raises(SettingsError) as loosened:
        TuningSettings.from_manifest({"max_training_jobs": 11}, where="m", deployment=deployment)
    assert str(loosened.value) == (
        "m: key 'max_training_jobs' (11) is above the deployment's 10: cdk.json owns this limit (the "
        "environment's 'tuning' block) and a manifest may only tighten it. Tighten it in the manifest or remove "
        "it; to loosen it, the team that deploys the stack edits cdk.json and redeploys."
    )
