"""Who may change what, and every limit a run can hit, checked before any job starts.

The deployment is the repository's own `cdk.json` (environment dev: 20 jobs, 2 in parallel,
1 h each, spot on, max_cost_usd 50, ml.g4dn.xlarge, poll 60 s); expected numbers are worked
out by hand from it.
"""

from __future__ import annotations

import dataclasses
import json

import botocore.session
import pytest

from pipeline.aws.errors import DatasetError, SettingsError
from pipeline.dataset.manifest import parse_manifest
from pipeline.dataset.validation import schedule
from pipeline.settings import limits
from pipeline.settings.trust import DATASET, OWNERSHIP
from pipeline.settings.tuning_settings import TuningSettings
from stacks.config import load_config
from tests.conftest import cdk_context
from tests.oracles import HISTORY_EVENTS_QUOTA, TRAINING_MAX_RUNTIME_SECONDS, TUNING_MAX_RUNTIME_SECONDS

URI = "s3://ds/datasets/flowers/manifest.json"
DEV = load_config(cdk_context(), "dev")
PROD = load_config(cdk_context(), "prod")


def manifest(tuning: dict, deployment: TuningSettings = DEV.tuning) -> TuningSettings:
    text = json.dumps({"format": "image", "tuning": tuning}, indent=2)
    return parse_manifest(text, URI, deployment)[1]


def refused(tuning: dict, deployment: TuningSettings = DEV.tuning) -> str:
    with pytest.raises(DatasetError) as raised:
        manifest(tuning, deployment)
    return str(raised.value)


# ---------------------------------------------------------------------- trust boundary


def test_every_setting_has_an_owner() -> None:
    assert set(OWNERSHIP) == {f.name for f in dataclasses.fields(TuningSettings)}


# A looser value, against DEV, for every key a manifest does not own. The test below is generated
# from OWNERSHIP, so a new deployment-owned or tighten-only key without an entry here fails by name.
LOOSER = {
    "max_training_jobs": 21,  # DEV: 20
    "max_parallel_jobs": 3,  # DEV: 2
    "max_runtime_seconds": 3601,  # DEV: 3600
    "max_wait_seconds": 7201,  # DEV: 7200
    "volume_size_gb": 51,  # DEV: 50
    "use_spot": False,  # DEV: on
    "max_cost_usd": 1000,  # DEV: 50
    "instance_type": "ml.g5.xlarge",  # DEV allows ml.g4dn.xlarge only
    "allowed_instance_types": ["ml.g4dn.xlarge", "ml.g5.xlarge"],
    "price_per_hour_usd": 0.01,  # a lower price: a larger budget fits under the cap
    "approval": {"mode": "auto", "threshold": 0.0, "min_test_images": 1},
    "poll_seconds": 1,
    "evaluation_instance_type": "ml.p3.2xlarge",
    "evaluation_max_seconds": 86_400,
    "copies_across_splits": "warn",  # DEV: refuse
    "warm_start": "auto",  # DEV: off (learning from other datasets' runs is wider still)
}


@pytest.mark.parametrize("key", sorted(key for key, owner in OWNERSHIP.items() if owner != DATASET))
def test_every_key_the_dataset_does_not_own_is_refused_looser_from_a_manifest(key: str) -> None:
    assert key in LOOSER, f"add a looser value of {key!r} to LOOSER"
    message = refused({key: LOOSER[key]})
    assert message.startswith(URI) and f"key '{key}'" in message
    assert "cdk.json" in message  # who to ask


def test_the_looser_values_are_looser_than_the_deployment() -> None:
    assert set(LOOSER) == {key for key, owner in OWNERSHIP.items() if owner != DATASET}
    for key, value in LOOSER.items():
        assert getattr(DEV.tuning, key) != (tuple(value) if isinstance(value, list) else value), key


@pytest.mark.parametrize(
    "tuning",
    [
        {"price_per_hour_usd": 0.01},
        {"approval": {"mode": "auto", "threshold": 0.1}},
        {"approval": {"mode": "manual"}},
        {"poll_seconds": 1},
        {"allowed_instance_types": ["ml.p3.2xlarge"]},
    ],
)
def test_a_manifest_cannot_set_what_the_deployment_owns(tuning: dict) -> None:
    (key,) = tuning
    message = refused(tuning)
    assert message.startswith(URI)
    assert f"key '{key}' is owned by the deployment: cdk.json" in message
    assert "edits cdk.json and redeploys" in message
    assert "(line 4)" in message  # the key's own line


@pytest.mark.parametrize(
    ("tuning", "problem"),
    [
        ({"max_cost_usd": 50.01}, "key 'max_cost_usd' (50.01) is above the deployment's 50.0"),
        ({"max_cost_usd": None}, "key 'max_cost_usd' removes the deployment's limit of 50.0"),
        ({"max_training_jobs": 21}, "key 'max_training_jobs' (21) is above the deployment's 20"),
        ({"max_parallel_jobs": 3, "max_training_jobs": 20}, "key 'max_parallel_jobs' (3) is above the deployment's 2"),
        ({"max_runtime_seconds": 3601}, "key 'max_runtime_seconds' (3601) is above the deployment's 3600"),
        ({"volume_size_gb": 51}, "key 'volume_size_gb' (51) is above the deployment's 50"),
        ({"use_spot": False}, "key 'use_spot' turns managed spot training off"),
        ({"max_wait_seconds": 7201}, "key 'max_wait_seconds' (7201) is above the deployment's 7200"),
    ],
)
def test_a_manifest_may_not_loosen_a_deployment_limit(tuning: dict, problem: str) -> None:
    message = refused(tuning)
    assert problem in message
    assert "cdk.json owns this limit" in message and "may only tighten it" in message


@pytest.mark.parametrize(
    ("tuning", "key", "value"),
    [
        ({"max_cost_usd": 50}, "max_cost_usd", 50.0),  # equal is not looser
        ({"max_cost_usd": 10}, "max_cost_usd", 10.0),
        ({"max_training_jobs": 20}, "max_training_jobs", 20),
        ({"max_training_jobs": 6}, "max_training_jobs", 6),
        ({"max_runtime_seconds": 1800}, "max_runtime_seconds", 1800),
        ({"max_wait_seconds": 7200}, "max_wait_seconds", 7200),
        ({"use_spot": True}, "use_spot", True),
    ],
)
def test_a_manifest_may_tighten_a_deployment_limit(tuning: dict, key: str, value: object) -> None:
    assert getattr(manifest(tuning), key) == value


def test_turning_spot_on_tightens_a_deployment_without_spot() -> None:
    assert PROD.tuning.use_spot is False
    assert manifest({"use_spot": True}, PROD.tuning).use_spot is True


def test_a_manifest_may_narrow_warm_start_and_never_widen_it() -> None:
    # off < previous (this dataset's own runs) < auto (similar datasets' runs too)
    auto = dataclasses.replace(DEV.tuning, layout="flat", warm_start="auto")
    assert [manifest({"warm_start": w}, auto).warm_start for w in ("auto", "previous", "off")] == [
        "auto",
        "previous",
        "off",
    ]
    assert manifest({"warm_start": False}, auto).warm_start == "off"  # the boolean of before
    previous = dataclasses.replace(auto, warm_start="previous")
    assert "key 'warm_start' ('auto') is wider than the deployment's 'previous'" in refused(
        {"warm_start": "auto"}, previous
    )
    assert "key 'warm_start' ('previous') is wider than the deployment's 'off'" in refused(
        {"warm_start": True, "layout": "flat"}
    )


def test_without_a_deployed_cap_a_manifest_may_set_one() -> None:
    uncapped = dataclasses.replace(DEV.tuning, max_cost_usd=None)
    assert manifest({"max_cost_usd": 5}, uncapped).max_cost_usd == 5


def test_an_instance_type_outside_the_allow_list_is_refused_and_one_inside_is_taken() -> None:
    message = refused({"instance_type": "ml.p3.2xlarge"})
    assert "key 'instance_type' is 'ml.p3.2xlarge', which this deployment does not allow" in message
    assert "Allowed: ml.g4dn.xlarge (cdk.json 'allowed_instance_types')" in message
    wider = dataclasses.replace(DEV.tuning, allowed_instance_types=("ml.g4dn.xlarge", "ml.g5.xlarge"))
    assert manifest({"instance_type": "ml.g5.xlarge"}, wider).instance_type == "ml.g5.xlarge"


def test_dataset_settings_stay_the_manifests_to_choose() -> None:
    chosen = manifest({"epochs": 12, "layout": "flat", "optimizers": ["adam"], "strategy": "Random"})
    assert (chosen.epochs, chosen.layout, chosen.optimizers, chosen.strategy) == (12, "flat", ("adam",), "Random")


# ---------------------------------------------------------------------- the workflow's lifetime


def test_dev_deployment_times_out_after_its_worst_case_two_polls_and_an_hour() -> None:
    # 20 jobs / 2 parallel = 10 waves x (spot: 2 x 3600 s) = 72,000 s, + 2 x 60 s; the test
    # evaluation's limit of 3,600 s + 2 x 60 s; + 3,600 s of slack; and two waits in the queue
    # (training slots, then the transform's) of max_queue_wait_seconds, 86,400 s each in dev.
    assert DEV.workflow_timeout_seconds == 79_440 + 2 * 86_400


def test_a_manifest_that_would_outlive_the_workflow_is_refused_before_any_job() -> None:
    slower = manifest({"max_parallel_jobs": 1})  # tighter on GPUs, but 20 waves instead of 10
    with pytest.raises(DatasetError) as raised:
        schedule(slower, URI, DEV.workflow_timeout_seconds, evaluation=True, queue=86_400)
    message = str(raised.value)
    assert message.startswith(URI)
    assert "up to 144,000 s" in message and "timeout of 252,240 s" in message
    assert "Lower tuning.max_training_jobs" in message


def test_a_run_exactly_as_long_as_the_workflow_allows_is_accepted() -> None:
    assert schedule(DEV.tuning, URI, 75_720).max_tuning_seconds == 72_000
    with pytest.raises(DatasetError):
        schedule(DEV.tuning, URI, 75_719)
    # With a test split, its evaluation (3,600 s and two 60 s polls) must fit too.
    assert schedule(DEV.tuning, URI, 79_440, evaluation=True).evaluation_poll_seconds == 60
    with pytest.raises(DatasetError):
        schedule(DEV.tuning, URI, 79_439, evaluation=True)


@pytest.mark.parametrize("evaluation_seconds", [300, 3600, 86_400])
def test_the_longest_run_and_its_evaluation_fit_the_history_together(evaluation_seconds: int) -> None:
    tuning = limits.poll_interval(60, TUNING_MAX_RUNTIME_SECONDS)
    evaluation = limits.evaluation_poll_interval(60, evaluation_seconds)
    polls = (TUNING_MAX_RUNTIME_SECONDS // tuning + 1) + (evaluation_seconds // evaluation + 1)
    assert polls * 9 + 400 <= 0.9 * HISTORY_EVENTS_QUOTA


@pytest.mark.parametrize("configured", [1, 60, 300, 3600])
@pytest.mark.parametrize("tuning_seconds", [120, 3600, 72_000, 1_000_000, TUNING_MAX_RUNTIME_SECONDS])
def test_polling_never_fills_the_execution_history(configured: int, tuning_seconds: int) -> None:
    interval = limits.poll_interval(configured, tuning_seconds)
    assert interval >= configured
    polls = -(-tuning_seconds // interval) + 1
    # 9 events a poll (Wait 2, Task 5, Choice 2); at most 400 for everything else; 20% kept free.
    assert polls * 9 + 400 <= 0.8 * HISTORY_EVENTS_QUOTA


def test_the_longest_run_validation_accepts_fits_the_history() -> None:
    longest = TuningSettings.from_mapping(
        {"max_training_jobs": 750, "max_parallel_jobs": 1, "max_runtime_seconds": TRAINING_MAX_RUNTIME_SECONDS},
        where="t",
    )
    timing = schedule(longest, URI, None)
    assert timing.max_tuning_seconds == TUNING_MAX_RUNTIME_SECONDS
    # The tuning job may still be Stopping at its limit: the workflow waits two grown intervals more.
    assert limits.workflow_seconds(TUNING_MAX_RUNTIME_SECONDS, 60) == (
        TUNING_MAX_RUNTIME_SECONDS + 2 * timing.poll_seconds + 3600
    )
    assert timing.poll_seconds > 60  # grown from the configured 60 s: 30 days of 60 s polls would not fit
    assert (TUNING_MAX_RUNTIME_SECONDS // timing.poll_seconds + 1) * 9 + 400 <= 0.8 * HISTORY_EVENTS_QUOTA


# ---------------------------------------------------------------------- GPUs at once


@pytest.mark.parametrize("parallel", [4, 5, 6, 7, 9, 10])
@pytest.mark.parametrize("jobs", [10, 22, 40])
def test_layout_jobs_never_runs_more_instances_than_max_parallel_jobs(parallel: int, jobs: int) -> None:
    settings = TuningSettings.from_mapping(
        {
            "layout": "job_per_optimizer",
            "max_training_jobs": jobs,
            "max_parallel_jobs": parallel,
            "use_pretrained_model": True,
        },
        where="t",
    )
    budgets = settings.tuning_job_budgets()
    assert len(budgets) == 4
    assert sum(p for _, p in budgets) <= parallel
    assert sum(j for j, _ in budgets) == jobs
    assert all(p >= 1 for _, p in budgets)


def test_layout_jobs_with_fewer_instances_than_optimizers_is_refused() -> None:
    with pytest.raises(
        SettingsError, match=r"'max_parallel_jobs' \(2\) must be at least the number of optimizers \(4\)"
    ):
        TuningSettings.from_mapping({"layout": "job_per_optimizer", "max_parallel_jobs": 2}, where="t")


# ---------------------------------------------------------------------- the algorithm's rules


@pytest.mark.parametrize("name", ["beta_1", "beta_2", "eps", "gamma", "learning_rate", "momentum", "weight_decay"])
def test_a_range_beyond_the_valid_values_is_refused_and_one_up_to_1_is_taken(name: str) -> None:
    message = refused({"ranges": {name: {"max": 1.01}}})
    assert f"key 'ranges.{name}': max (1.01) is outside {name}'s valid values, 0 to 1" in message
    assert manifest({"ranges": {name: {"max": 1.0}}}).range_for(name).max_value == 1.0


def test_pretrained_networks_need_224_by_224() -> None:
    message = refused({"image_shape": "3,32,32"})
    assert "use_pretrained_model is true, and pretrained networks take 3,224,224 only" in message
    assert manifest({"image_shape": "3,32,32", "use_pretrained_model": False}).image_shape == "3,32,32"


def test_training_runtime_stops_at_28_days() -> None:
    deployment = dataclasses.replace(DEV.tuning, max_runtime_seconds=TRAINING_MAX_RUNTIME_SECONDS)
    assert manifest({"max_runtime_seconds": TRAINING_MAX_RUNTIME_SECONDS}, deployment).max_runtime_seconds == 2_419_200
    with pytest.raises(SettingsError, match="must be between 120 and 2419200, got 2419201"):
        TuningSettings.from_mapping({"max_runtime_seconds": TRAINING_MAX_RUNTIME_SECONDS + 1}, where="t")


def test_volume_size_cannot_exceed_the_instances_local_storage() -> None:
    with pytest.raises(SettingsError, match=r"'volume_size_gb' \(126\) is more than the 125 GB of local storage"):
        TuningSettings.from_mapping({"instance_type": "ml.g4dn.xlarge", "volume_size_gb": 126}, where="t")
    ok = TuningSettings.from_mapping({"instance_type": "ml.g4dn.xlarge", "volume_size_gb": 125}, where="t")
    assert ok.volume_size_gb == 125
    ebs = TuningSettings.from_mapping({"instance_type": "ml.p3.2xlarge", "volume_size_gb": 2000}, where="t")
    assert ebs.volume_size_gb == 2000


def test_an_unknown_instance_type_is_named_as_a_typo_not_a_missing_price() -> None:
    with pytest.raises(SettingsError) as raised:
        TuningSettings.from_mapping({"instance_type": "ml.g4dn.xlarg"}, where="t")
    message = str(raised.value)
    assert "'ml.g4dn.xlarg' is not a training instance type" in message
    assert "Did you mean 'ml.g4dn.xlarge'?" in message
    assert "price" not in message


def test_every_known_instance_type_is_one_sagemaker_trains_on() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    enum = set(model.shape_for("TrainingInstanceType").enum)
    assert set(limits.TRAINING_INSTANCES) <= enum


# ---------------------------------------------------------------------- found in review


def test_a_price_override_cannot_price_several_allowed_instance_types() -> None:
    with pytest.raises(
        SettingsError, match="'price_per_hour_usd' prices one instance type, but allowed_instance_types"
    ):
        TuningSettings.from_mapping(
            {"price_per_hour_usd": 0.8, "allowed_instance_types": ["ml.g4dn.xlarge", "ml.p3.16xlarge"]}, where="t"
        )


def test_a_manifest_turning_spot_on_does_not_buy_a_looser_cap() -> None:
    from pipeline.tuning.cost import worst_case

    on_demand = worst_case(PROD.tuning, "us-east-1").worst_case_usd
    assert worst_case(manifest({"use_spot": True}, PROD.tuning), "us-east-1").worst_case_usd == on_demand


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"num_layers": 18.0}, "key 'num_layers' must be one of 18, 34, 50, 101, 152, 200, got 18.0"),
        ({"image_shape": "3,²²,224"}, "key 'image_shape' must look like '3,224,224'"),
    ],
)
def test_look_alike_values_are_refused_not_sent(tuning: dict, message: str) -> None:
    assert message in refused(tuning)


def test_a_key_given_twice_is_refused_on_its_second_line() -> None:
    text = '{\n  "format": "image",\n  "tuning": {\n    "max_training_jobs": 5,\n    "max_training_jobs": 500\n  }\n}'
    with pytest.raises(DatasetError) as raised:
        parse_manifest(text, URI, DEV.tuning)
    assert str(raised.value) == (
        f"{URI}, line 5: key 'max_training_jobs' appears twice in one object; JSON readers disagree on which one "
        "counts. Keep one."
    )


def test_the_poll_budget_is_what_the_quota_leaves() -> None:
    # (25,000 x 0.8 - 400) // 9 = 2,177 iterations, less the one that sees the end.
    assert limits.max_polls() == 2176


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
