"""Build CreateHyperParameterTuningJob requests: pure functions of the run and its settings.

Three layouts (setting `layout`):

- `definitions`: one tuning job, one TrainingJobDefinition per optimizer, each with a static
  `optimizer` and only the ranges that optimizer reads. One budget, one search; SageMaker
  forbids early stopping and warm start here.
- `job_per_optimizer`: one tuning job per optimizer, side by side; the budget (total and parallel jobs) is
  split between them, so the run never runs more than `max_parallel_jobs` instances at once.
  Keeps early stopping and warm start.
- `flat`: the documented table literally, one definition, every hyperparameter tuned for every optimizer
  (`optimizer` a categorical range); the optimizer ignores what it does not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from pipeline.aws.input_forms import INPUT_FORMATS, Channel
from pipeline.contract import Data
from pipeline.settings.search_space import (
    DOCUMENTED_RANGES,
    OBJECTIVE_METRIC,
    OBJECTIVE_TYPE,
    NumericRange,
    hyperparameters_read_by,
)
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import tuning_job_name

if TYPE_CHECKING:  # typing only: the stubs are not in the Lambda bundle
    from mypy_boto3_sagemaker.literals import TrainingInstanceTypeType
    from mypy_boto3_sagemaker.type_defs import (
        CategoricalParameterRangeTypeDef,
        ChannelTypeDef,
        ContinuousParameterRangeTypeDef,
        HyperParameterTrainingJobDefinitionTypeDef,
        IntegerParameterRangeTypeDef,
        OutputDataConfigTypeDef,
        ParameterRangesTypeDef,
        S3DataSourceTypeDef,
        StoppingConditionTypeDef,
        TagTypeDef,
        VpcConfigTypeDef,
    )


@dataclass(frozen=True)
class Destinations:
    role_arn: str
    image_uri: str
    output_uri: str  # s3://artifacts/tuning/<dataset>/<run>/
    checkpoint_uri: str  # s3://artifacts/checkpoints/<dataset>/<run>/
    kms_key_arn: str | None = None
    # Training inside your VPC: {"Subnets": [...], "SecurityGroupIds": [...]} (deployment setting).
    vpc_config: VpcConfigTypeDef | None = None


def format_bound(kind: str, value: float) -> str:
    """Range bounds travel as strings; integers without a decimal point."""
    return str(int(value)) if kind == "Integer" else repr(float(value))


def effective_range(r: NumericRange, data: Data) -> NumericRange:
    """Cap mini_batch_size at the number of training images (the algorithm requires it)."""
    if r.name == "mini_batch_size" and r.max_value > data.num_training_samples:
        return NumericRange(r.name, r.kind, r.min_value, data.num_training_samples, r.scaling)
    return r


def parameter_ranges(
    settings: TuningSettings,
    data: Data,
    names: tuple[str, ...],
    optimizers: tuple[str, ...] | None,
    *,
    optimizer: str | None = None,
) -> ParameterRangesTypeDef:
    """The ranges of `names` (`optimizer`'s own where it has them); `optimizers`: the categorical."""
    continuous: list[ContinuousParameterRangeTypeDef] = []
    integer: list[IntegerParameterRangeTypeDef] = []
    for name in names:
        r = effective_range(settings.range_for(name, optimizer), data)
        bounds = format_bound(r.kind, r.min_value), format_bound(r.kind, r.max_value)
        if r.kind == "Integer":
            integer.append({"Name": name, "MinValue": bounds[0], "MaxValue": bounds[1], "ScalingType": r.scaling})
        else:
            continuous.append({"Name": name, "MinValue": bounds[0], "MaxValue": bounds[1], "ScalingType": r.scaling})
    categorical: list[CategoricalParameterRangeTypeDef] = []
    if optimizers is not None:
        categorical.append({"Name": "optimizer", "Values": list(optimizers)})
    return {
        "ContinuousParameterRanges": continuous,
        "IntegerParameterRanges": integer,
        "CategoricalParameterRanges": categorical,
    }


def static_hyperparameters(settings: TuningSettings, data: Data, optimizer: str | None) -> dict[str, str]:
    _, height, width = settings.image_size
    static = {
        "num_classes": str(data.num_classes),
        "num_training_samples": str(data.num_training_samples),
        "epochs": str(settings.epochs),
        "num_layers": str(settings.num_layers),
        "image_shape": settings.image_shape,
        "use_pretrained_model": "1" if settings.use_pretrained_model else "0",
        "precision_dtype": settings.precision_dtype,
    }
    if INPUT_FORMATS[data.format].raw_images:
        # Raw images (files, or records of an augmented manifest): the shorter side after resizing,
        # required when training from image files. The
        # hyperparameters page asks for it to be larger than both sides of image_shape, so the
        # crop fits whatever the aspect ratio: 8/7 of the longer side, the ImageNet convention
        # of resizing to 256 to crop 224.
        static["resize"] = str(-(-max(height, width) * 8 // 7))
    if optimizer is not None:
        static["optimizer"] = optimizer
    return static


def _input_channel(channel: Channel) -> ChannelTypeDef:
    """The channel's InputDataConfig entry, written out from the form validation gave it."""
    form = channel.form
    source: S3DataSourceTypeDef = {
        "S3DataType": form.s3_data_type,
        "S3Uri": channel.uri,
        "S3DataDistributionType": "FullyReplicated",
    }
    if channel.attribute_names:
        source["AttributeNames"] = list(channel.attribute_names)
    entry: ChannelTypeDef = {
        "ChannelName": channel.name,
        "DataSource": {"S3DataSource": source},
        "ContentType": form.content_type,
        "CompressionType": "None",
    }
    if form.record_wrapper is not None:
        entry["RecordWrapperType"] = form.record_wrapper
    if form.input_mode is not None:
        entry["InputMode"] = form.input_mode
    return entry


def input_mode(data: Data) -> Literal["File", "Pipe"]:
    """The job's TrainingInputMode: Pipe when its channels stream (augmented manifests), else File."""
    return "Pipe" if any(c.form.input_mode == "Pipe" for c in data.channels) else "File"


def training_definition(
    settings: TuningSettings,
    data: Data,
    dest: Destinations,
    *,
    optimizer: str | None,
    definition_name: str | None = None,
    ranges: ParameterRangesTypeDef | None = None,
) -> HyperParameterTrainingJobDefinitionTypeDef:
    stopping: StoppingConditionTypeDef = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    output: OutputDataConfigTypeDef = {"S3OutputPath": dest.output_uri}
    if dest.kms_key_arn:
        output["KmsKeyId"] = dest.kms_key_arn
    definition: HyperParameterTrainingJobDefinitionTypeDef = {
        "StaticHyperParameters": static_hyperparameters(settings, data, optimizer),
        "AlgorithmSpecification": {"TrainingImage": dest.image_uri, "TrainingInputMode": input_mode(data)},
        "RoleArn": dest.role_arn,
        "InputDataConfig": [_input_channel(c) for c in data.channels],
        "OutputDataConfig": output,
        "ResourceConfig": {
            # One of the API's enum: settings/keys.py accepts only limits.TRAINING_INSTANCES.
            "InstanceType": cast("TrainingInstanceTypeType", settings.instance_type),
            "InstanceCount": 1,
            "VolumeSizeInGB": settings.volume_size_gb,
        },
        "StoppingCondition": stopping,
        # The algorithm needs no network: isolation is always on.
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": dest.vpc_config is not None,
        "EnableManagedSpotTraining": settings.use_spot,
    }
    if dest.vpc_config is not None:
        definition["VpcConfig"] = dest.vpc_config
    if settings.use_spot:
        stopping["MaxWaitTimeInSeconds"] = settings.spot_max_wait_seconds
        suffix = f"{definition_name}/" if definition_name else ""
        definition["CheckpointConfig"] = {"S3Uri": f"{dest.checkpoint_uri}{suffix}"}
    if definition_name is not None:
        definition["DefinitionName"] = definition_name
        definition["TuningObjective"] = {"Type": OBJECTIVE_TYPE, "MetricName": OBJECTIVE_METRIC}
    if ranges is not None:
        definition["HyperParameterRanges"] = ranges
    return definition


def _job_config(settings: TuningSettings, max_jobs: int, max_parallel: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Strategy": settings.strategy,
        "ResourceLimits": {
            "MaxNumberOfTrainingJobs": max_jobs,
            "MaxParallelTrainingJobs": max_parallel,
            "MaxRuntimeInSeconds": settings.tuning_job_runtime(max_jobs, max_parallel),
        },
        "TrainingJobEarlyStoppingType": settings.early_stopping,
    }
    if settings.strategy == "Hyperband":
        config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": settings.epochs}}
    criteria: dict[str, Any] = {}
    c = settings.completion
    if c.target_accuracy is not None:
        criteria["TargetObjectiveMetricValue"] = c.target_accuracy
    if c.max_jobs_not_improving is not None:
        criteria["BestObjectiveNotImproving"] = {"MaxNumberOfTrainingJobsNotImproving": c.max_jobs_not_improving}
    if c.complete_on_convergence:
        criteria["ConvergenceDetected"] = {"CompleteOnConvergence": "Enabled"}
    if criteria:
        config["TuningJobCompletionCriteria"] = criteria
    return config


def _request(
    name: str,
    config: dict[str, Any],
    body: dict[str, Any],
    settings: TuningSettings,
    parents: list[str] | None,
    tags: list[TagTypeDef] | None,
) -> dict[str, Any]:
    request = {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": config, **body}
    if parents and settings.warm_start != "off" and settings.layout != "definitions":
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in parents[:5]],
            # A new version of the dataset is new data: transfer what was learnt.
            "WarmStartType": "TransferLearning",
        }
    if tags:
        request["Tags"] = tags
    return request


def build_tuning_requests(
    run_id: str,
    settings: TuningSettings,
    data: Data,
    dest: Destinations,
    *,
    warm_start_parents: dict[str, list[str]] | None = None,
    tags: list[TagTypeDef] | None = None,
) -> list[dict[str, Any]]:
    """The CreateHyperParameterTuningJob requests of a run, in start order.

    `warm_start_parents` maps each tuning job name of this run to the finished tuning jobs of
    the previous run it should learn from (layouts `job_per_optimizer` and `flat` only).
    """
    requests: list[dict[str, Any]] = []

    def finish(name: str, config: dict[str, Any], body: dict[str, Any]) -> None:
        requests.append(_request(name, config, body, settings, (warm_start_parents or {}).get(name), tags))

    objective = {"Type": OBJECTIVE_TYPE, "MetricName": OBJECTIVE_METRIC}
    if settings.layout == "definitions":
        config = _job_config(settings, settings.max_training_jobs, settings.max_parallel_jobs)
        definitions = [
            training_definition(
                settings,
                data,
                dest,
                optimizer=opt,
                definition_name=opt,
                ranges=parameter_ranges(settings, data, hyperparameters_read_by(opt), None, optimizer=opt),
            )
            for opt in settings.optimizers
        ]
        finish(tuning_job_name(run_id), config, {"TrainingJobDefinitions": definitions})
    elif settings.layout == "job_per_optimizer":
        budgets = settings.tuning_job_budgets()
        for opt, (share, parallel) in zip(settings.optimizers, budgets, strict=True):
            config = _job_config(settings, share, parallel)
            config["HyperParameterTuningJobObjective"] = objective
            config["ParameterRanges"] = parameter_ranges(
                settings, data, hyperparameters_read_by(opt), None, optimizer=opt
            )
            body = {"TrainingJobDefinition": training_definition(settings, data, dest, optimizer=opt)}
            finish(tuning_job_name(run_id, opt), config, body)
    else:  # flat: the documented table literally
        config = _job_config(settings, settings.max_training_jobs, settings.max_parallel_jobs)
        config["HyperParameterTuningJobObjective"] = objective
        config["ParameterRanges"] = parameter_ranges(settings, data, tuple(DOCUMENTED_RANGES), settings.optimizers)
        body = {"TrainingJobDefinition": training_definition(settings, data, dest, optimizer=None)}
        finish(tuning_job_name(run_id), config, body)
    return requests
