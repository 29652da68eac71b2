"""Validate a dataset in S3 from its manifest event: reads only, never writes or moves data."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from botocore.exceptions import ClientError

from pipeline.aws.errors import DatasetError, SettingsError, error_code
from pipeline.aws.input_forms import INPUT_FORMATS, Channel
from pipeline.contract import Cost, Data, DatasetRef, Run, Schedule, TestSplit
from pipeline.dataset.augmented import MANIFEST_FILES, SOURCE_REF, scan_augmented
from pipeline.dataset.leakage import TRAIN, Images, Leakage, checked_leakage
from pipeline.dataset.listing import Listed, is_folder_marker, list_channel
from pipeline.dataset.lst import Lines, LstSummary, chunk_lines, scan_lst
from pipeline.dataset.manifest import (
    IMAGE_CHANNELS,
    RECORDIO_CHANNELS,
    TEST_CHANNEL,
    TEST_LST_CHANNEL,
    TEST_MANIFEST,
    Manifest,
    dataset_ref_from_key,
    parse_manifest,
)
from pipeline.dataset.pinning import VersionPinning
from pipeline.settings import limits
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.cost import check_budget
from pipeline.tuning.naming import run_id


def ref_from_event(event: dict[str, Any]) -> DatasetRef:
    """The dataset of an S3 "Object Created" event delivered by EventBridge."""
    try:
        detail = S3EventBridgeNotificationEvent(event).detail
        bucket, key = detail.bucket.name, detail.object.key
        version = detail.object.get("version-id") or "null"
    except (KeyError, TypeError, AttributeError):
        raise DatasetError(
            "the workflow input is not an S3 'Object Created' event (detail.bucket.name and "
            "detail.object.key are missing). Start runs by uploading a manifest."
        ) from None
    return dataset_ref_from_key(bucket, key, version)


READ_CHUNK = 1 << 20


def _get(s3: Any, bucket: str, key: str, version_id: str | None = None) -> Any:
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        kwargs["VersionId"] = version_id
    try:
        return s3.get_object(**kwargs)["Body"]
    except ClientError as exc:
        if (code := error_code(exc)) in ("NoSuchKey", "NoSuchVersion", "404", "AccessDenied"):
            raise DatasetError(
                f"s3://{bucket}/{key}: cannot be read ({code}); it was deleted or replaced before "
                "the run read it. Upload it again."
            ) from None
        raise


def _read(s3: Any, bucket: str, key: str, version_id: str | None = None) -> str:
    body = _get(s3, bucket, key, version_id).read()
    try:
        return str(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"s3://{bucket}/{key}: not UTF-8 text (byte {exc.start}). Save it as UTF-8.") from None


def _stream_lines(s3: Any, bucket: str, key: str) -> Iterator[tuple[int, str]]:
    """The numbered lines of an object, read a megabyte at a time."""
    return chunk_lines(_get(s3, bucket, key).iter_chunks(READ_CHUNK), f"s3://{bucket}/{key}")


def _files(listed: dict[str, Listed]) -> dict[str, Listed]:
    """The files of a listing: what is left once the console's folder markers are set aside."""
    return {key: item for key, item in listed.items() if not is_folder_marker(key)}


def _check_channel(
    s3: Any, ref: DatasetRef, channel: str, listed: dict[str, Listed] | None = None
) -> dict[str, Listed]:
    objects = _files(list_channel(s3, ref.bucket, f"{ref.prefix}{channel}/") if listed is None else listed)
    if not objects:
        raise DatasetError(
            f"{ref.uri}{channel}/: channel '{channel}' is missing or empty. Upload its files "
            "before the manifest (the manifest must be written last)."
        )
    return objects


def schedule(
    settings: TuningSettings, manifest_uri: str, timeout: int | None, *, evaluation: bool = False, queue: int = 0
) -> Schedule:
    """When the run must end and how often to poll, or DatasetError if the workflow cannot hold it.

    The state machine's timeout is fixed at deploy time; a manifest that lowers the parallelism
    or turns on spot can make its worst case longer than that, and would time out after the GPU
    time is paid. The poll interval grows for long runs so the history stays within its quota."""
    tuning = settings.worst_case_tuning_seconds()
    needed = limits.workflow_seconds(
        tuning, settings.poll_seconds, settings.evaluation_max_seconds if evaluation else 0, queue_seconds=queue
    )
    if timeout is not None and needed > timeout:
        raise DatasetError(
            f"{manifest_uri}: this run's tuning may take up to {tuning:,} s ({settings.max_training_jobs} jobs, "
            f"{settings.max_parallel_jobs} at a time, each up to "
            f"{settings.spot_max_wait_seconds if settings.use_spot else settings.max_runtime_seconds:,} s), and with "
            f"the waits for slots, the last polls and the other steps ({needed - tuning:,} s) that is more than the workflow's timeout of "
            f"{timeout:,} s, fixed when the stack was deployed. Lower tuning.max_training_jobs or "
            "tuning.max_runtime_seconds in the manifest, or keep the deployment's max_parallel_jobs; nothing was started."
        )
    evaluation_poll = limits.evaluation_poll_interval(settings.poll_seconds, settings.evaluation_max_seconds)
    return Schedule(
        poll_seconds=limits.poll_interval(settings.poll_seconds, tuning),
        max_tuning_seconds=tuning,
        evaluation_poll_seconds=evaluation_poll if evaluation else 0,
    )


def _scan_split(
    s3: Any, ref: DatasetRef, split: str, leakage: Leakage, listed: dict[str, dict[str, Listed]] | None = None
) -> tuple[LstSummary, Images, str]:
    """One split of an image dataset, its .lst checked line by line: (summary, its images, the .lst's URI)."""
    listed = listed or {}
    images = _check_channel(s3, ref, split, listed.get(split))
    lst_objects = _check_channel(s3, ref, f"{split}_lst", listed.get(f"{split}_lst"))
    lst_files = [k for k in lst_objects if k.endswith(".lst")]
    if len(lst_files) != 1:
        raise DatasetError(
            f"{ref.uri}{split}_lst/: expected exactly one .lst file, found "
            f"{len(lst_files)} ({', '.join(sorted(lst_objects)[:5])}). Keep one {split}.lst there."
        )
    lst_key = f"{ref.prefix}{split}_lst/{lst_files[0]}"
    where = f"s3://{ref.bucket}/{lst_key}"
    named = Images(images, split, where, f"{ref.uri}{split}/", leakage)

    def lines() -> Lines:
        return _stream_lines(s3, ref.bucket, lst_key)

    summary = scan_lst(
        lines(),
        where,
        exists=named.exists,
        channel_uri=f"{ref.uri}{split}/",
        rescan=lines,
        on_entry=lambda entry: named.named(entry.line, entry.path),
        training=split == TRAIN,
    )
    return summary, named, where


def _image_data(s3: Any, ref: DatasetRef, manifest: Manifest, manifest_uri: str, settings: TuningSettings) -> Data:
    """Counts of an image dataset, from its .lst files, checked against what the manifest says.
    The held-out splits first, so the leakage check keeps them, and not the training split, in memory."""
    leakage = Leakage()
    validation, _, _ = _scan_split(s3, ref, "validation", leakage)
    test = _image_test_split(s3, ref, leakage)
    train, _, _ = _scan_split(s3, ref, TRAIN, leakage)
    _check_counts(
        ref, manifest, manifest_uri, (train.images, train.classes), validation.classes, ("train.lst", "_lst/")
    )
    if test is not None:
        _check_held_out_classes(test[1].index_uri, "the test split", test[0], train.classes)
    warnings = checked_leakage(leakage, settings)
    data = _data(ref, manifest.format, train.classes, train.images, validation.images, IMAGE_CHANNELS)
    return dataclasses.replace(data, test=test[1] if test else None, warnings=warnings)


def _image_test_split(s3: Any, ref: DatasetRef, leakage: Leakage) -> tuple[int, TestSplit] | None:
    """The optional test split of image files (test/ and test_lst/), checked like the others:
    (its classes, the split), or None when neither prefix holds any object. One without the other,
    or an index with no usable line, is refused: never a run that silently skips its evaluation."""
    listed = {c: list_channel(s3, ref.bucket, f"{ref.prefix}{c}/") for c in (TEST_CHANNEL, TEST_LST_CHANNEL)}
    if not any(listed.values()):
        return None
    for channel, other in ((TEST_LST_CHANNEL, TEST_CHANNEL), (TEST_CHANNEL, TEST_LST_CHANNEL)):
        if listed[other] and not _files(listed[channel]):
            raise DatasetError(
                f"{ref.uri}{channel}/: missing or empty, but {ref.uri}{other}/ is there, which asks for a test "
                f"split. A test split is {TEST_CHANNEL}/ (the images) and {TEST_LST_CHANNEL}/{TEST_CHANNEL}.lst "
                f"(their index) together: upload {channel}/ too, or remove {other}/ for a run without one."
            )
    summary, images, index = _scan_split(s3, ref, TEST_CHANNEL, leakage, listed)
    prefix = f"{ref.uri}{TEST_CHANNEL}/"
    return summary.classes, TestSplit(index, prefix, summary.images, images.check_payload())


def _check_held_out_classes(where: str, split: str, split_classes: int, classes: int) -> None:
    """A held-out split's labels are the training split's class numbers (it may lack some)."""
    if split_classes > classes:
        raise DatasetError(
            f"{where}: {split} has labels up to {split_classes - 1} but training only {classes - 1}. A label is "
            f"the class's number in training (0..{classes - 1}): number this split's images as their classes are "
            "numbered in training (do not renumber it on its own), or add the missing class to training."
        )


def _augmented_data(s3: Any, ref: DatasetRef, manifest: Manifest, manifest_uri: str, settings: TuningSettings) -> Data:
    """Counts of an augmented-manifest dataset, from train.manifest and validation.manifest (and
    test.manifest when present, even empty), whose every line must name an image of the dataset
    that exists. The held-out manifests first, for the leakage check."""
    present = list_channel(s3, ref.bucket, ref.prefix)
    leakage = Leakage()
    splits = [("validation", MANIFEST_FILES["validation"])]
    if TEST_MANIFEST in present:
        splits.append((TEST_CHANNEL, TEST_MANIFEST))
    splits.append((TRAIN, MANIFEST_FILES[TRAIN]))
    summaries, named = {}, {}
    for split, name in splits:
        if name not in present:
            raise DatasetError(
                f"{ref.uri}{name}: missing. Upload the {split} augmented manifest (JSON Lines: source-ref and "
                f"'{manifest.label_attribute}') before manifest.json."
            )
        named[split] = images = Images(present, split, ref.uri + name, ref.uri, leakage)
        summaries[split] = scan_augmented(
            _stream_lines(s3, ref.bucket, ref.prefix + name),
            ref.uri + name,
            label_attribute=manifest.label_attribute,
            dataset_uri=ref.uri,
            exists=images.exists,
            on_record=lambda record, images=images: images.named(  # type: ignore[misc]
                record.line, record.source_ref.removeprefix(ref.uri)
            ),
            training=split == TRAIN,
        )
    train, validation = summaries[TRAIN], summaries["validation"]
    files = ("train.manifest", ".manifest")
    _check_counts(ref, manifest, manifest_uri, (train.images, train.classes), validation.classes, files)
    test = None
    if TEST_CHANNEL in summaries:
        where, summary = ref.uri + TEST_MANIFEST, summaries[TEST_CHANNEL]
        _check_held_out_classes(where, "the test split", summary.classes, train.classes)
        test = TestSplit(where, ref.uri, summary.images, named[TEST_CHANNEL].check_payload())
    warnings = checked_leakage(leakage, settings)
    data = _data(ref, manifest.format, train.classes, train.images, validation.images, ())
    attributes = (SOURCE_REF, manifest.label_attribute)
    form = INPUT_FORMATS[manifest.format].form
    channels = tuple(Channel(split, ref.uri + name, form, attributes) for split, name in MANIFEST_FILES.items())
    return dataclasses.replace(data, channels=channels, test=test, warnings=warnings)


def _check_counts(
    ref: DatasetRef,
    manifest: Manifest,
    manifest_uri: str,
    train: tuple[int, int],
    validation_classes: int,
    files: tuple[str, str],
) -> None:
    """Every validation class is a training class; what the manifest states matches what was counted.
    `files`: how the train file is named and how the validation file's name ends, for the messages."""
    images, classes = train
    train_file, suffix = files
    _check_held_out_classes(f"{ref.uri}validation{suffix}", "validation", validation_classes, classes)
    if manifest.num_classes is not None and manifest.num_classes != classes:
        raise DatasetError(
            f"{manifest_uri}: 'num_classes' is {manifest.num_classes} but {train_file} has "
            f"{classes} classes. Remove the key or correct it."
        )
    if manifest.num_training_samples is not None and manifest.num_training_samples != images:
        raise DatasetError(
            f"{manifest_uri}: 'num_training_samples' is {manifest.num_training_samples} but {train_file} lists "
            f"{images} images. Remove the key (it is counted from {train_file}) or correct it."
        )


def _recordio_data(s3: Any, ref: DatasetRef, manifest: Manifest, manifest_uri: str, settings: TuningSettings) -> Data:
    """A RecordIO dataset's counts are the manifest's (parse_manifest); no channel file may be empty."""
    for split in RECORDIO_CHANNELS:
        for key, item in sorted(_check_channel(s3, ref, split).items()):
            if item.size == 0:
                raise DatasetError(
                    f"{ref.uri}{split}/{key}: empty (0 bytes). The algorithm reads every file under {split}/ and a "
                    "RecordIO file holds at least one record: upload it again, or remove it."
                )
    for split in (TEST_CHANNEL, TEST_LST_CHANNEL):
        if list_channel(s3, ref.bucket, f"{ref.prefix}{split}/"):
            raise DatasetError(
                f"{ref.uri}{split}/: a test split is read from image files ({TEST_CHANNEL}/ + "
                f"{TEST_LST_CHANNEL}/{TEST_CHANNEL}.lst) or from {TEST_MANIFEST}; this RecordIO dataset would run "
                f"without one. Remove {split}/, or upload the dataset as image files or an augmented manifest."
            )
    classes, training = manifest.num_classes or 0, manifest.num_training_samples or 0
    return _data(ref, manifest.format, classes, training, 0, RECORDIO_CHANNELS)


def _data(ref: DatasetRef, fmt: str, classes: int, train: int, validation: int, channels: tuple[str, ...]) -> Data:
    return Data(
        format=fmt,
        num_classes=classes,
        num_training_samples=train,
        num_validation_samples=validation,
        channels=tuple(Channel(c, f"{ref.uri}{c}/", INPUT_FORMATS[fmt].form) for c in channels),
    )


def _check_batch_fits(settings: TuningSettings, data: Data, manifest_uri: str) -> None:
    smallest_batch = int(min(settings.range_for("mini_batch_size", o).min_value for o in settings.optimizers))
    if data.num_training_samples < smallest_batch:
        raise DatasetError(
            f"{manifest_uri}: {data.num_training_samples} training images, fewer than the smallest "
            f"mini_batch_size ({smallest_batch}); the algorithm fails with 'The number of input "
            "images must be bigger or equal to the mini_batch_size'. Add images, or lower "
            "tuning.ranges.mini_batch_size.min in the manifest."
        )


# Each input format's reader (aws/input_forms.py INPUT_FORMATS): its counts and channels, every file checked.
Reader = Callable[[Any, DatasetRef, Manifest, str, TuningSettings], Data]
READERS: dict[str, Reader] = {"image": _image_data, "recordio": _recordio_data, "augmented_manifest": _augmented_data}


def validate_dataset(
    event: dict[str, Any],
    defaults: dict[str, Any],
    s3: Any,
    region: str = "us-east-1",
    workflow_timeout_seconds: int | None = None,
    queue_seconds: int = 0,  # the deployment's max_queue_wait_seconds, part of the timeout
) -> Run:
    """The run for a valid dataset, or DatasetError naming file, line and fix. Also refuses (BudgetExceeded)
    a run whose worst case is above `max_cost_usd`, or one that could outlive the workflow's timeout."""
    ref, s3 = ref_from_event(event), VersionPinning(s3)
    try:
        base = TuningSettings.from_mapping(defaults, where="deployment defaults (cdk.json)")
    except SettingsError as exc:
        raise DatasetError(str(exc)) from None
    manifest_uri = f"s3://{ref.bucket}/{ref.manifest_key}"
    manifest, settings = parse_manifest(_read(s3, ref.bucket, ref.manifest_key, ref.version_id), manifest_uri, base)
    data = READERS[manifest.format](s3, ref, manifest, manifest_uri, settings)
    _check_batch_fits(settings, data, manifest_uri)
    data = dataclasses.replace(data, pinned={uri: v for uri, v in s3.versions.items() if uri != manifest_uri})
    evaluation = data.test is not None
    estimate = check_budget(settings, region, manifest_uri, evaluation=evaluation)
    return Run(
        run_id=run_id(ref.bucket, ref.name, ref.version_id),
        dataset=ref,
        data=data,
        settings=settings,
        schedule=schedule(settings, manifest_uri, workflow_timeout_seconds, evaluation=evaluation, queue=queue_seconds),
        cost=Cost(**estimate.to_dict(), budget_usd=settings.max_cost_usd),
    )
