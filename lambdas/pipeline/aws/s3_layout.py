"""Where everything lives in the two buckets: the one place the key layout is written down.

Datasets bucket (written by the people who upload datasets, read by validation and training):

    datasets/<name>/manifest.json          written last; its upload starts the run
    datasets/<name>/<channel>/...          train/, validation/, train_lst/, validation_lst/, and
                                           test/, test_lst/ for a held-out split
    datasets/<name>/<split>.manifest       the augmented-manifest format: train, validation, test

Artifacts bucket (written by the pipeline only):

    tuning/<name>/<run>/                   the training jobs' model artifacts
    checkpoints/<name>/<run>/              spot checkpoints (expire after 14 days)
    metrics/<name>/<run>/metrics.json      the registered model's metrics document
    metrics/<name>/<run>/evaluation.json   its held-out test scores (accuracy, per class, confusion)
    runs/<name>/latest.json                the latest registered run, for warm start
    runs/_classes/<n>/<layout>/<name>.json the same record, indexed by number of classes and layout,
                                           for warm start from similar datasets (layouts that can
                                           warm start only; no dataset name starts with '_')
    evaluation/<name>/<run>/               the test transform's input manifest and answers (expire after 14 days)
    inputs/<name>/<run>/<digest>/          the indexes and manifests as validated, which the jobs read
"""

from __future__ import annotations

DATASETS = "datasets/"
MANIFEST_NAME = "manifest.json"
TUNING = "tuning/"
CHECKPOINTS = "checkpoints/"
METRICS = "metrics/"
RUNS = "runs/"
EVALUATION = "evaluation/"
INPUTS = "inputs/"
# The upload that starts a run, as an EventBridge wildcard pattern on the object key.
MANIFEST_KEY_PATTERN = f"{DATASETS}*/{MANIFEST_NAME}"


def everything_under(prefix: str) -> str:
    """The IAM/S3 object pattern of a prefix: "tuning/" -> "tuning/*"."""
    return f"{prefix}*"


def dataset_prefix(name: str) -> str:
    return f"{DATASETS}{name}/"


def manifest_key(name: str) -> str:
    return f"{dataset_prefix(name)}{MANIFEST_NAME}"


def tuning_output_uri(bucket: str, name: str, run_id: str) -> str:
    return f"s3://{bucket}/{TUNING}{name}/{run_id}/"


def checkpoint_uri(bucket: str, name: str, run_id: str) -> str:
    return f"s3://{bucket}/{CHECKPOINTS}{name}/{run_id}/"


def metrics_key(name: str, run_id: str) -> str:
    return f"{METRICS}{name}/{run_id}/metrics.json"


def evaluation_prefix(name: str, run_id: str) -> str:
    return f"{EVALUATION}{name}/{run_id}/"


def evaluation_key(name: str, run_id: str) -> str:
    """The test scores, beside the metrics document that links them (kept; evaluation/ expires)."""
    return f"{METRICS}{name}/{run_id}/evaluation.json"


def previous_run_key(name: str) -> str:
    """Where a dataset's latest registered run is recorded, for warm start."""
    return f"{RUNS}{name}/latest.json"


def similar_runs_prefix(num_classes: int, layout: str) -> str:
    """Where the latest registered run of every dataset with `num_classes` classes is recorded, by layout."""
    return f"{RUNS}_classes/{num_classes}/{layout}/"


def similar_run_key(num_classes: int, layout: str, name: str) -> str:
    return f"{similar_runs_prefix(num_classes, layout)}{name}.json"


def inputs_prefix(name: str, run_id: str) -> str:
    """Where a run's validated indexes are copied (pinning.py): the training jobs read them here."""
    return f"{INPUTS}{name}/{run_id}/"
