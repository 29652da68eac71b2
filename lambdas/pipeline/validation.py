"""Validate a dataset in S3 from its manifest event: reads only, never writes or moves data."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pipeline import limits
from pipeline.cost import check_budget
from pipeline.dataset import (
    CONTENT_TYPES,
    IMAGE_CHANNELS,
    RECORDIO_CHANNELS,
    DatasetError,
    DatasetRef,
    check_labels,
    check_paths_exist,
    dataset_ref_from_key,
    parse_lst,
    parse_manifest,
)
from pipeline.naming import run_id
from pipeline.settings import SettingsError, TuningSettings


def ref_from_event(event: dict[str, Any]) -> DatasetRef:
    try:
        detail = event["detail"]
        bucket = detail["bucket"]["name"]
        key = detail["object"]["key"]
    except (KeyError, TypeError):
        raise DatasetError(
            "the workflow input is not an S3 'Object Created' event (detail.bucket.name and "
            "detail.object.key are missing). Start runs by uploading a manifest."
        ) from None
    version = detail["object"].get("version-id") or "null"
    return dataset_ref_from_key(bucket, key, version)


def _read(s3: Any, bucket: str, key: str, version_id: str | None = None) -> str:
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        kwargs["VersionId"] = version_id
    try:
        body = s3.get_object(**kwargs)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchVersion", "404", "AccessDenied"):
            raise DatasetError(
                f"s3://{bucket}/{key}: cannot be read ({code}); it was deleted or replaced before "
                "the run read it. Upload it again."
            ) from None
        raise
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"s3://{bucket}/{key}: not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None


def _list(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Relative key -> size for every object under prefix."""
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = obj["Size"]
    return found


def _check_channel(s3: Any, ref: DatasetRef, channel: str) -> dict[str, int]:
    objects = {k: v for k, v in _list(s3, ref.bucket, f"{ref.prefix}{channel}/").items() if v > 0 and k}
    if not objects:
        raise DatasetError(
            f"{ref.uri}{channel}/: channel '{channel}' is missing or empty. Upload its files "
            "before the manifest (the manifest must be written last)."
        )
    return objects


def schedule(settings: TuningSettings, manifest_uri: str, workflow_timeout_seconds: int | None) -> dict[str, int]:
    """When the run must end and how often to poll, or DatasetError if the workflow cannot hold it.

    The state machine's timeout is fixed at deploy time; a manifest that lowers the parallelism
    or turns on spot can make its worst case longer than that, and would time out after the GPU
    time is paid. The poll interval grows for long runs so the history stays within its quota."""
    tuning = settings.worst_case_tuning_seconds()
    needed = limits.workflow_seconds(tuning, settings.poll_seconds)
    if workflow_timeout_seconds is not None and needed > workflow_timeout_seconds:
        raise DatasetError(
            f"{manifest_uri}: this run's tuning may take up to {tuning:,} s ({settings.max_training_jobs} jobs, "
            f"{settings.max_parallel_jobs} at a time, each up to "
            f"{settings.spot_max_wait_seconds if settings.use_spot else settings.max_runtime_seconds:,} s), and with "
            f"the last polls and the other steps ({needed - tuning:,} s) that is more than the workflow's timeout of "
            f"{workflow_timeout_seconds:,} s, fixed when the stack was deployed. Lower tuning.max_training_jobs or "
            "tuning.max_runtime_seconds in the manifest, or keep the deployment's max_parallel_jobs; nothing was started."
        )
    return {
        "poll_seconds": limits.poll_interval(settings.poll_seconds, tuning),
        "max_tuning_seconds": tuning,
    }


def validate_dataset(
    event: dict[str, Any],
    defaults: dict[str, Any],
    s3: Any,
    region: str = "us-east-1",
    workflow_timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The run descriptor for a valid dataset, or DatasetError naming file, line and fix.

    Also refuses (BudgetExceeded) a run whose worst-case cost is above `max_cost_usd`, and a
    run that could outlive the deployed workflow's timeout."""
    ref = ref_from_event(event)
    try:
        base = TuningSettings.from_mapping(defaults, where="deployment defaults (cdk.json)")
    except SettingsError as exc:
        raise DatasetError(str(exc)) from None
    manifest_uri = f"s3://{ref.bucket}/{ref.manifest_key}"
    manifest, settings = parse_manifest(_read(s3, ref.bucket, ref.manifest_key, ref.version_id), manifest_uri, base)

    counts: dict[str, int] = {}
    channels: tuple[str, ...]
    if manifest.format == "image":
        for split in ("train", "validation"):
            images = _check_channel(s3, ref, split)
            lst_objects = _check_channel(s3, ref, f"{split}_lst")
            lst_files = [k for k in lst_objects if k.endswith(".lst")]
            if len(lst_files) != 1:
                raise DatasetError(
                    f"{ref.uri}{split}_lst/: expected exactly one .lst file, found "
                    f"{len(lst_files)} ({', '.join(sorted(lst_objects)[:5])}). Keep one {split}.lst there."
                )
            lst_uri = f"{ref.uri}{split}_lst/{lst_files[0]}"
            entries = parse_lst(_read(s3, ref.bucket, f"{ref.prefix}{split}_lst/{lst_files[0]}"), lst_uri)
            check_paths_exist(entries, set(images), lst_uri, f"{ref.uri}{split}/")
            classes = check_labels(entries, lst_uri)
            counts[split] = len(entries)
            counts[f"{split}_classes"] = classes
        if counts["validation_classes"] > counts["train_classes"]:
            raise DatasetError(
                f"{ref.uri}validation_lst/: validation has labels up to {counts['validation_classes'] - 1} "
                f"but training only {counts['train_classes'] - 1}. Every class must appear in training."
            )
        num_classes = manifest.num_classes or counts["train_classes"]
        if num_classes != counts["train_classes"]:
            raise DatasetError(
                f"{manifest_uri}: 'num_classes' is {num_classes} but train.lst has "
                f"{counts['train_classes']} classes. Remove the key or correct it."
            )
        num_training = counts["train"]
        channels = IMAGE_CHANNELS
    else:
        for split in RECORDIO_CHANNELS:
            _check_channel(s3, ref, split)
        num_classes = manifest.num_classes or 0
        num_training = manifest.num_training_samples or 0
        channels = RECORDIO_CHANNELS

    smallest_batch = int(settings.range_for("mini_batch_size").min_value)
    if num_training < smallest_batch:
        raise DatasetError(
            f"{manifest_uri}: {num_training} training images, fewer than the smallest "
            f"mini_batch_size ({smallest_batch}); the algorithm fails with 'The number of input "
            "images must be bigger or equal to the mini_batch_size'. Add images, or lower "
            "tuning.ranges.mini_batch_size.min in the manifest."
        )

    estimate = check_budget(settings, region, manifest_uri)
    timing = schedule(settings, manifest_uri, workflow_timeout_seconds)
    rid = run_id(ref.bucket, ref.name, ref.version_id)
    return {
        "run_id": rid,
        "dataset": {
            "bucket": ref.bucket,
            "name": ref.name,
            "manifest_key": ref.manifest_key,
            "version_id": ref.version_id,
            "uri": ref.uri,
        },
        "data": {
            "format": manifest.format,
            "num_classes": num_classes,
            "num_training_samples": num_training,
            "num_validation_samples": counts.get("validation", 0),
            "content_type": CONTENT_TYPES[manifest.format],
            "channels": {c: f"{ref.uri}{c}/" for c in channels},
        },
        "settings": settings.to_dict(),
        "schedule": timing,
        "cost": {**estimate.to_dict(), "budget_usd": settings.max_cost_usd},
    }
