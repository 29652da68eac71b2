"""The CreateHyperParameterTuningJob requests: the seed's space per layout, checked against the API model."""

from __future__ import annotations

import dataclasses

import pytest

from local.api_model import request_errors
from pipeline.aws.input_forms import Channel, InputForm
from pipeline.settings.keys import Completion
from pipeline.settings.search_space import NumericRange
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import TUNING_JOB_NAME_PATTERN, run_id, tuning_job_name
from pipeline.tuning.request import Destinations, build_tuning_requests, effective_range, format_bound
from tests.oracles import OPTIMIZER_READS, READ_BY_ALL, seed_table
from tests.sample_request import DATA, facts
from tests.sample_request import DEST as SAMPLE_DEST

# The shared sample dataset; the destinations add the output key the deployed stack names.
DEST = dataclasses.replace(
    SAMPLE_DEST, kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)
RUN = run_id("ds", "digits", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")


SEED = TuningSettings.from_mapping({"preset": "documented"}, where="test")


def requests_for(**changes) -> list[dict]:
    if changes.get("layout") == "job_per_optimizer":
        changes.setdefault("max_parallel_jobs", 4)  # one instance per optimizer at least
    settings = dataclasses.replace(SEED, **changes)
    settings.check("test")
    return build_tuning_requests(RUN, settings, DATA, DEST)


def seed_range(name: str, *, cap: int | None = None) -> dict:
    """The range the seed document publishes for `name`, as the request must carry it."""
    r = seed_table().ranges[name]
    hi = min(r.max_value, cap) if cap else r.max_value
    return {
        "Name": name,
        "MinValue": format_bound(r.kind, r.min_value),
        "MaxValue": format_bound(r.kind, hi),
        "ScalingType": "Auto",
    }


def ranges_by_name(ranges: dict) -> dict:
    return {r["Name"]: r for r in ranges["ContinuousParameterRanges"] + ranges["IntegerParameterRanges"]}


@pytest.mark.parametrize("layout", ["definitions", "job_per_optimizer", "flat"])
@pytest.mark.parametrize("use_spot", [False, True])
def test_every_request_satisfies_the_sagemaker_api_model(layout: str, use_spot: bool) -> None:
    for request in requests_for(layout=layout, use_spot=use_spot, warm_start=layout != "definitions"):
        assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []


def test_the_checker_catches_what_botocore_skips() -> None:
    (request,) = requests_for(layout="flat")
    request["HyperParameterTuningJobName"] = "x" * 33
    request["HyperParameterTuningJobConfig"]["Strategy"] = "Genetic"
    errors = "\n".join(request_errors("sagemaker", "CreateHyperParameterTuningJob", request))
    assert "33 characters > max 32" in errors
    assert "'Genetic' not in enum" in errors


def test_flat_layout_is_the_seed_literally() -> None:
    (request,) = requests_for(layout="flat")
    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    ranges = config["ParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop", "nag"]}]
    assert ranges_by_name(ranges) == {n: seed_range(n) for n in seed_table().ranges}
    assert ranges_by_name(ranges)["mini_batch_size"]["MaxValue"] == "512"
    assert ranges_by_name(ranges)["learning_rate"]["MaxValue"] == "0.5"
    assert ranges_by_name(ranges)["gamma"]["MaxValue"] == "0.999"
    assert "optimizer" not in request["TrainingJobDefinition"]["StaticHyperParameters"]


def test_definitions_layout_gives_each_optimizer_only_what_it_reads() -> None:
    (request,) = requests_for(layout="definitions")
    definitions = {d["DefinitionName"]: d for d in request["TrainingJobDefinitions"]}
    assert set(definitions) == {"sgd", "adam", "rmsprop", "nag"}
    assert set(ranges_by_name(definitions["adam"]["HyperParameterRanges"])) == {
        "beta_1",
        "beta_2",
        "eps",
        "learning_rate",
        "mini_batch_size",
    }
    assert set(ranges_by_name(definitions["rmsprop"]["HyperParameterRanges"])) == {
        "gamma",
        "eps",
        "learning_rate",
        "mini_batch_size",
    }
    for optimizer in ("sgd", "nag"):
        assert set(ranges_by_name(definitions[optimizer]["HyperParameterRanges"])) == {
            "momentum",
            "weight_decay",
            "learning_rate",
            "mini_batch_size",
        }
    for name, definition in definitions.items():
        assert definition["StaticHyperParameters"]["optimizer"] == name
        assert definition["TuningObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
        for hp, r in ranges_by_name(definition["HyperParameterRanges"]).items():
            assert r == seed_range(hp), (name, hp)
    config = request["HyperParameterTuningJobConfig"]
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert "ParameterRanges" not in config and "WarmStartConfig" not in request


def test_jobs_layout_splits_the_budget_between_optimizers() -> None:
    requests = requests_for(
        layout="job_per_optimizer", max_training_jobs=22, max_parallel_jobs=4, early_stopping="Auto"
    )
    assert [r["HyperParameterTuningJobName"] for r in requests] == [
        tuning_job_name(RUN, o) for o in ("sgd", "adam", "rmsprop", "nag")
    ]
    limits = [r["HyperParameterTuningJobConfig"]["ResourceLimits"] for r in requests]
    assert [lim["MaxNumberOfTrainingJobs"] for lim in limits] == [6, 6, 5, 5]
    assert sum(lim["MaxNumberOfTrainingJobs"] for lim in limits) == 22
    assert all(lim["MaxParallelTrainingJobs"] == 1 for lim in limits)
    for request, optimizer in zip(requests, ("sgd", "adam", "rmsprop", "nag"), strict=True):
        assert request["TrainingJobDefinition"]["StaticHyperParameters"]["optimizer"] == optimizer
        ranges = ranges_by_name(request["HyperParameterTuningJobConfig"]["ParameterRanges"])
        assert set(ranges) == READ_BY_ALL | OPTIMIZER_READS[optimizer]
        assert all(r == seed_range(name) for name, r in ranges.items())
        assert request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Auto"


def test_mini_batch_size_is_capped_at_the_training_images() -> None:
    small = dataclasses.replace(DATA, num_training_samples=100)
    (request,) = build_tuning_requests(RUN, dataclasses.replace(SEED, layout="flat"), small, DEST)
    assert ranges_by_name(request["HyperParameterTuningJobConfig"]["ParameterRanges"])["mini_batch_size"] == seed_range(
        "mini_batch_size", cap=100
    )


def test_static_hyperparameters_come_from_the_data() -> None:
    (request,) = requests_for(layout="flat", image_shape="3,128,96", epochs=12, use_pretrained_model=False)
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["num_classes"] == "10"
    assert static["num_training_samples"] == "1437"
    # "resize should be larger than both the width and the height of image_shape" (Image
    # classification hyperparameters): 8/7 of the longer side, the ImageNet convention (256 for 224).
    assert static["resize"] == "147"
    assert static["image_shape"] == "3,128,96"
    assert static["epochs"] == "12"
    assert static["use_pretrained_model"] == "0"  # the hyperparameters page: 0 or 1
    (square,) = requests_for(layout="flat", image_shape="3,224,224")
    assert square["TrainingJobDefinition"]["StaticHyperParameters"]["resize"] == "256"


def test_recordio_needs_no_resize() -> None:
    recordio = dataclasses.replace(
        DATA,
        format="recordio",
        channels=(
            Channel("train", "s3://a/", InputForm("application/x-recordio")),
            Channel("validation", "s3://b/", InputForm("application/x-recordio")),
        ),
    )
    (request,) = build_tuning_requests(RUN, dataclasses.replace(SEED, layout="flat"), recordio, DEST)
    definition = request["TrainingJobDefinition"]
    assert "resize" not in definition["StaticHyperParameters"]
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["train", "validation"]
    assert {c["ContentType"] for c in definition["InputDataConfig"]} == {"application/x-recordio"}


def test_spot_adds_checkpoints_and_max_wait() -> None:
    (request,) = requests_for(layout="definitions", use_spot=True, max_runtime_seconds=3600)
    for definition in request["TrainingJobDefinitions"]:
        assert definition["EnableManagedSpotTraining"] is True
        assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
        assert definition["CheckpointConfig"]["S3Uri"] == f"{DEST.checkpoint_uri}{definition['DefinitionName']}/"


def test_completion_criteria_and_warm_start() -> None:
    settings = dataclasses.replace(
        SEED,
        layout="flat",
        warm_start=True,
        completion=Completion(target_accuracy=0.97, max_jobs_not_improving=5, complete_on_convergence=True),
    )
    name = tuning_job_name(RUN)
    (request,) = build_tuning_requests(RUN, settings, DATA, DEST, warm_start_parents={name: ["digits-old"]})
    assert request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] == {
        "TargetObjectiveMetricValue": 0.97,
        "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 5},
        "ConvergenceDetected": {"CompleteOnConvergence": "Enabled"},
    }
    assert request["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "digits-old"}],
        "WarmStartType": "TransferLearning",
    }


def test_hyperband_gets_its_resource_config() -> None:
    (request,) = requests_for(layout="flat", strategy="Hyperband", epochs=20)
    assert request["HyperParameterTuningJobConfig"]["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 20}
    }


@pytest.mark.parametrize(
    "dataset", ["a", "flowers", "a-very-long-dataset-name-that-goes-on-and-on", "under_score__x", "---"]
)
@pytest.mark.parametrize("optimizer", [None, "sgd", "adam", "rmsprop", "nag"])
def test_job_names_are_valid_and_deterministic(dataset: str, optimizer: str | None) -> None:
    name = tuning_job_name(run_id("bucket", dataset, "v1"), optimizer)
    assert TUNING_JOB_NAME_PATTERN.match(name) and len(name) <= 32
    assert name == tuning_job_name(run_id("bucket", dataset, "v1"), optimizer)
    # Training jobs are named <tuning job>-<3 digits>-<8 hex>: within 63 characters.
    assert len(name) + 13 <= 63


def test_new_version_or_other_dataset_gives_a_new_run() -> None:
    long = "a-very-long-dataset-name-that-goes-on-and-on"
    assert run_id("b", long, "v1") != run_id("b", long, "v2")
    assert run_id("b", long + "-x", "v1") != run_id("b", long + "-y", "v1")


def test_vpc_training_adds_the_network_and_encrypts_traffic_between_containers() -> None:
    vpc = {"Subnets": ["subnet-0123abcd"], "SecurityGroupIds": ["sg-0123abcd"]}
    settings = dataclasses.replace(TuningSettings(), layout="definitions")
    (request,) = build_tuning_requests(RUN, settings, DATA, dataclasses.replace(DEST, vpc_config=vpc))
    for definition in request["TrainingJobDefinitions"]:
        assert definition["VpcConfig"] == vpc
        assert definition["EnableNetworkIsolation"] is True
        assert definition["EnableInterContainerTrafficEncryption"] is True
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []


def test_the_default_is_the_seed_table_but_for_log_scaled_weight_decay() -> None:
    default = TuningSettings()
    assert default.preset == "measured" and default.layout == "definitions" and default.strategy == "Bayesian"
    doc = seed_table().ranges
    same = {
        r.name
        for r in default.ranges
        if (r.kind, r.min_value, r.max_value, r.scaling)
        == (doc[r.name].kind, doc[r.name].min_value, doc[r.name].max_value, "Auto")
    }
    assert set(doc) - same == {"weight_decay"}
    wd = default.range_for("weight_decay")
    assert (wd.min_value, wd.max_value, wd.scaling) == (1e-6, 0.999, "Logarithmic")
    (request,) = build_tuning_requests(RUN, default, DATA, DEST)
    sgd = next(d for d in request["TrainingJobDefinitions"] if d["DefinitionName"] == "sgd")
    wd_range = next(r for r in sgd["HyperParameterRanges"]["ContinuousParameterRanges"] if r["Name"] == "weight_decay")
    assert wd_range == {"Name": "weight_decay", "MinValue": "1e-06", "MaxValue": "0.999", "ScalingType": "Logarithmic"}
    assert "TuningJobCompletionCriteria" not in request["HyperParameterTuningJobConfig"]
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []


def test_the_seed_preset_reproduces_the_document_literally() -> None:
    doc = seed_table().ranges
    assert {r.name: (r.kind, r.min_value, r.max_value, r.scaling) for r in SEED.ranges} == {
        name: (d.kind, d.min_value, d.max_value, "Auto") for name, d in doc.items()
    }
    assert SEED.optimizers == seed_table().optimizers
    manifest = TuningSettings.from_mapping(
        {"preset": "documented", "ranges": {"learning_rate": {"max": 0.1}}}, where="m"
    )
    wd = manifest.range_for("weight_decay")
    assert (wd.min_value, wd.max_value, wd.scaling) == (0.0, 0.999, "Auto")
    assert manifest.range_for("learning_rate").max_value == 0.1


TWO_CHANNEL_DATA = facts(
    format="image",
    num_classes=10,
    num_training_samples=1437,
    channels={"train": "s3://ds/datasets/d/train/", "validation": "s3://ds/datasets/d/validation/"},
    content_type="application/x-image",
)


PLAIN_DEST = Destinations(
    role_arn="arn:aws:iam::123456789012:role/sm",
    image_uri="img:1",
    output_uri="s3://art/tuning/d/r/",
    checkpoint_uri="s3://art/checkpoints/d/r/",
)


def test_static_hyperparameters_are_exactly_these() -> None:
    settings = TuningSettings.from_mapping(
        {"layout": "flat", "epochs": 12, "num_layers": 50, "precision_dtype": "float16"}, where="t"
    )
    (request,) = build_tuning_requests("r", settings, TWO_CHANNEL_DATA, PLAIN_DEST)
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
    (request,) = build_tuning_requests("r", settings, TWO_CHANNEL_DATA, PLAIN_DEST)
    assert request["TrainingJobDefinition"]["CheckpointConfig"] == {"S3Uri": "s3://art/checkpoints/d/r/"}


def test_mini_batch_size_is_capped_only_above_the_training_images_and_keeps_its_scaling() -> None:
    r = NumericRange("mini_batch_size", "Integer", 8, 512, "Logarithmic")
    exactly = dataclasses.replace(TWO_CHANNEL_DATA, num_training_samples=512)
    assert effective_range(r, exactly) is r
    assert effective_range(r, dataclasses.replace(TWO_CHANNEL_DATA, num_training_samples=100)) == NumericRange(
        "mini_batch_size", "Integer", 8, 100, "Logarithmic"
    )
    lr = NumericRange("learning_rate", "Continuous", 1e-6, 0.5)
    assert effective_range(lr, dataclasses.replace(TWO_CHANNEL_DATA, num_training_samples=0)) is lr


def test_warm_start_takes_at_most_five_parents_and_never_with_definitions() -> None:
    flat = TuningSettings.from_mapping({"layout": "flat", "warm_start": True}, where="t")
    parents = {"r": [f"old-{i}" for i in range(7)]}
    (request,) = build_tuning_requests("r", flat, TWO_CHANNEL_DATA, PLAIN_DEST, warm_start_parents=parents)
    assert [p["HyperParameterTuningJobName"] for p in request["WarmStartConfig"]["ParentHyperParameterTuningJobs"]] == [
        "old-0",
        "old-1",
        "old-2",
        "old-3",
        "old-4",
    ]
    definitions = dataclasses.replace(flat, layout="definitions")  # bypasses the settings check on purpose
    (request,) = build_tuning_requests("r", definitions, TWO_CHANNEL_DATA, PLAIN_DEST, warm_start_parents=parents)
    assert "WarmStartConfig" not in request


@pytest.mark.parametrize("layout", ["flat", "definitions", "job_per_optimizer"])
def test_network_isolation_is_on_without_a_vpc_and_traffic_encryption_only_with_one(layout: str) -> None:
    settings = dataclasses.replace(TuningSettings(), layout=layout, max_parallel_jobs=4)
    for request in build_tuning_requests("r", settings, DATA, SAMPLE_DEST):
        definitions = request.get("TrainingJobDefinitions") or [request["TrainingJobDefinition"]]
        for definition in definitions:
            assert definition["EnableNetworkIsolation"] is True
            assert definition["EnableInterContainerTrafficEncryption"] is False
            assert "VpcConfig" not in definition


@pytest.mark.parametrize(
    ("jobs", "parallel", "spot", "expected"),
    [
        (20, 2, False, 10 * 3600),  # 10 waves of one-hour jobs
        (21, 2, False, 11 * 3600),  # the odd job is an eleventh wave
        (20, 2, True, 10 * 7200),  # spot: each wave may wait twice the runtime
        (1, 1, False, 3600),
    ],
)
def test_the_tuning_job_may_run_every_wave_to_its_limit(jobs: int, parallel: int, spot: bool, expected: int) -> None:
    settings = dataclasses.replace(
        TuningSettings(),
        layout="flat",
        max_training_jobs=jobs,
        max_parallel_jobs=parallel,
        max_runtime_seconds=3600,
        use_spot=spot,
    )
    (request,) = build_tuning_requests("r", settings, DATA, SAMPLE_DEST)
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] == expected
