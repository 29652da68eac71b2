"""Every limit a run can hit, as data, each with the page it comes from.

Validation checks a run against all of them before any job starts (`pipeline.settings.tuning_settings`
and `pipeline.dataset.validation`), so a run that would hit one fails in seconds with the key to change,
not after the GPU time is paid.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    value: int
    source: str


# ---------------------------------------------------------------------- SageMaker
# CreateTransformJob's MaxPayloadInMB (botocore's model of the API): "must be greater than, or
# equal to, the size of a single record. [...] The default value is 6 MB. [...] cannot be greater
# than 100 MB". One record is one image here.
# The API does not say whether a MB is 10^6 or 2^20 bytes: sizes are rounded up in the smaller,
# which is right under either reading. MaxConcurrentTransforms x MaxPayloadInMB must not exceed
# 100 either, checked only when MaxConcurrentTransforms is sent: above the default payload it is.
DEFAULT_PAYLOAD_MB, MAX_PAYLOAD_MB = 6, 100
MB = 1_000_000

# The API reference accepts ResourceLimits.MaxRuntimeInSeconds up to 15,768,000 s (182.5 days);
# the developer guide's limits page holds a tuning job to 30 days, not adjustable: the lower one.
TUNING_JOB_RUNTIME = Limit(
    30 * 24 * 3600, "SageMaker developer guide, Resource Limits for Automatic Model Tuning: maximum run time 30 days"
)
TUNING_JOB_MIN_RUNTIME = Limit(120, "SageMaker API reference, ResourceLimits.MaxRuntimeInSeconds (min 120)")
TRAINING_JOB_RUNTIME = Limit(
    2_419_200, "SageMaker API reference, StoppingCondition.MaxRuntimeInSeconds: at most 28 days for training"
)
# Warm start: "All training jobs launched by parent hyperparameter tuning jobs and the new
# hyperparameter tuning jobs count against the limit of training jobs for the tuning job" (API
# reference, HyperParameterTuningJobWarmStartConfig): this limit, 750 today (an archived guide's
# 500 dates from when the limit was 500).
TRAINING_JOBS_PER_TUNING_JOB = Limit(
    750, "SageMaker developer guide, Resource Limits for Automatic Model Tuning: training jobs per tuning job"
)
PARALLEL_TRAINING_JOBS = Limit(
    100, "SageMaker endpoints and quotas: parallel training jobs per tuning job (default 10, adjustable)"
)
# SageMaker states no maximum for ResourceConfig.VolumeSizeInGB (botocore's model: min 0, no max);
# the volume it provisions is EBS gp2, so EBS's own bound is the one a request can hit.
EBS_VOLUME_GB = Limit(
    16_384, "Amazon EBS volume types: a gp2 volume holds at most 16 TiB (SageMaker documents no lower maximum)"
)

# GPU training instances of the families the image-classification algorithm documents (P2, P3,
# G4dn, G5), with their local NVMe instance storage in GB, or None when training uses EBS.
# SageMaker API reference, ResourceConfig.VolumeSizeInGB: on instances with local storage
# SageMaker mounts that storage and a larger VolumeSizeInGB cannot be requested. Sizes are the
# EC2 instance-store table's, transcribed offline: verify before relying on the exact number.
INSTANCE_STORAGE_SOURCE = "SageMaker API reference, ResourceConfig.VolumeSizeInGB; EC2 instance store volumes table"
TRAINING_INSTANCES: dict[str, int | None] = {
    "ml.p2.xlarge": None,
    "ml.p2.8xlarge": None,
    "ml.p2.16xlarge": None,
    "ml.p3.2xlarge": None,
    "ml.p3.8xlarge": None,
    "ml.p3.16xlarge": None,
    "ml.p3dn.24xlarge": 1800,
    "ml.g4dn.xlarge": 125,
    "ml.g4dn.2xlarge": 225,
    "ml.g4dn.4xlarge": 225,
    "ml.g4dn.8xlarge": 900,
    "ml.g4dn.12xlarge": 900,
    "ml.g4dn.16xlarge": 900,
    "ml.g5.xlarge": 250,
    "ml.g5.2xlarge": 450,
    "ml.g5.4xlarge": 600,
    "ml.g5.8xlarge": 900,
    "ml.g5.12xlarge": 3800,
    "ml.g5.16xlarge": 1900,
    "ml.g5.24xlarge": 3800,
    "ml.g5.48xlarge": 7600,
}

# ---------------------------------------------------------------------- the algorithm
ALGORITHM_PAGE = "SageMaker developer guide, 'Image classification hyperparameters'"
# Valid values: floats in [0, 1].
UNIT_INTERVAL_HYPERPARAMETERS = ("beta_1", "beta_2", "eps", "gamma", "learning_rate", "momentum", "weight_decay")
# use_pretrained_model: pretrained networks take 224 x 224 images (3 channels).
PRETRAINED_IMAGE_SHAPE = "3,224,224"

# ---------------------------------------------------------------------- Step Functions
HISTORY_EVENTS = Limit(25_000, "Step Functions developer guide, Quotas: 25,000 events in an execution's history")
# One poll iteration: Wait (entered, exited), Task (entered, scheduled, started, succeeded,
# exited), Choice (entered, exited).
EVENTS_PER_POLL = 9
# Everything else a run writes: validate, start, choose, register, notify and their retries.
EVENTS_OUTSIDE_POLLING = 400
# Plan for at most this share of the quota, leaving room for retried polls.
HISTORY_PLANNING_SHARE = 0.8
# Added to the worst-case tuning time for the workflow's timeout: validation, registration,
# notification, and the last poll interval.
WORKFLOW_SLACK_SECONDS = 3600
STANDARD_EXECUTION_SECONDS = Limit(31_536_000, "Step Functions developer guide, Quotas: a Standard execution, 1 year")


def max_polls() -> int:
    """How many poll iterations a run may make and stay within the planned share of the history quota."""
    # One poll more than the interval divides into the runtime: the poll that sees the end.
    return int((HISTORY_EVENTS.value * HISTORY_PLANNING_SHARE - EVENTS_OUTSIDE_POLLING) // EVENTS_PER_POLL) - 1


def poll_interval(configured: int, tuning_seconds: int) -> int:
    """The configured interval, lengthened when the run is so long that polling would fill the history."""
    return max(configured, -(-tuning_seconds // max_polls()))


# Batch transform instance types the evaluation may use (botocore's TransformInstanceType enum,
# the families the algorithm's inference runs on: CPU m5/c5, GPU g4dn/p3).
TRANSFORM_INSTANCE_TYPES = (
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.m5.4xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.c5.4xlarge",
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.p3.2xlarge",
)


# Polls of the test evaluation (Wait + Task + Choice, 9 events each) fit in 10% of the history,
# inside the 20% the tuning's polls leave free.
EVALUATION_POLLS = int(HISTORY_EVENTS.value * 0.1) // EVENTS_PER_POLL


def evaluation_poll_interval(configured: int, evaluation_seconds: int) -> int:
    """The configured interval, lengthened so a transform that runs to its limit stays within its polls."""
    return max(configured, -(-evaluation_seconds // EVALUATION_POLLS))


def workflow_seconds(
    tuning_seconds: int, configured_poll: int, evaluation_seconds: int = 0, *, queue_seconds: int = 0
) -> int:
    """How long an execution may need: the wait for training slots (`queue_seconds`, the
    deployment's max_queue_wait_seconds), the tuning, two poll intervals (the poll that sees the
    tuning job `Stopping` at its own limit, and the one that sees it stopped), the test split's
    wait for its transform slot and its evaluation with its own two polls when there is one, and
    the slack. A queued run waits on a task token: a few events, however long the wait."""
    poll = poll_interval(configured_poll, tuning_seconds)
    evaluation = 0
    if evaluation_seconds:
        evaluation = (
            queue_seconds + evaluation_seconds + 2 * evaluation_poll_interval(configured_poll, evaluation_seconds)
        )
    return queue_seconds + tuning_seconds + 2 * poll + evaluation + WORKFLOW_SLACK_SECONDS
