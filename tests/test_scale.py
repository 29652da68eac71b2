"""Validation and ChooseBest at real sizes, proven on behaviour (never on timing).

The listing is checked against moto's S3 (real pagination: 1,000 keys a page); the bill's
deadline with a clock the test controls.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.choose_best import best_of_run, billable_seconds
from pipeline.contract import Bill
from pipeline.dataset.listing import Listed, list_channel
from tests.fakes import Fake
from tests.sample_request import client_error

BUCKET = "scale-datasets"


def put(s3: Any, keys: list[str], size: int | None = None) -> None:
    """Objects of `size` bytes, or of 1 to 7 bytes depending on the key (sizes are listed too)."""
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * (1 + len(key) % 7 if size is None else size))


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def flat_listing(s3: Any, prefix: str) -> dict[str, Listed]:
    """One page after another, every object (0-byte ones too): size and ETag without quotes."""
    return {
        o["Key"][len(prefix) :]: Listed(o["Size"], o["ETag"].strip('"'))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for o in page.get("Contents", [])
    }


def test_listing_by_stretches_finds_exactly_what_a_flat_listing_finds(s3) -> None:
    prefix = "datasets/d/train/"
    # 40 class folders (more than the 32 stretches), one with 2,100 images (three pages), nested
    # folders, files at the top, an empty object and a neighbour dataset whose name extends ours.
    keys = [f"{prefix}c{c:02d}/{i}.png" for c in range(40) for i in range(3)]
    keys += [f"{prefix}c07/{i:05d}.png" for i in range(2100)]
    keys += [f"{prefix}c12/deeper/x.png", f"{prefix}top.png", f"{prefix}c03/z.png"]
    put(s3, keys)
    put(s3, [f"{prefix}c05/empty.png"], size=0)
    put(s3, ["datasets/d/train2/c00/0.png", "datasets/d/other/c00/0.png"])
    listed = list_channel(s3, BUCKET, prefix)
    assert listed == flat_listing(s3, prefix)
    assert len(listed) == 40 * 3 + 2100 + 3 + 1
    # The empty object is listed: validation decides what an empty file means.
    assert listed["c05/empty.png"] == Listed(0, "d41d8cd98f00b204e9800998ecf8427e")  # MD5 of no bytes
    assert "top.png" in listed and "c12/deeper/x.png" in listed


def test_a_channel_without_folders_is_listed_whole(s3) -> None:
    prefix = "datasets/d/train_lst/"
    put(s3, [f"{prefix}train.lst", f"{prefix}notes.txt"])
    sizes = {key: item.size for key, item in list_channel(s3, BUCKET, prefix).items()}
    assert sizes == {"train.lst": 1 + len(f"{prefix}train.lst") % 7, "notes.txt": 1 + len(f"{prefix}notes.txt") % 7}
    assert list_channel(s3, BUCKET, "datasets/d/missing/") == {}


class Jobs(Fake):
    """ListTrainingJobsForHyperParameterTuningJob and DescribeTrainingJob over `jobs` jobs; the
    describes of the jobs in `stall` wait on `release` (a bill that runs out of time)."""

    def __init__(self, jobs: int, stall: set[int] = frozenset(), fail: set[int] = frozenset()) -> None:
        self.jobs, self.stall, self.fail = jobs, stall, fail
        self.release = threading.Event()

    def get_paginator(self, operation: str) -> Any:
        return self

    def paginate(self, HyperParameterTuningJobName: str, PaginationConfig: Any) -> Any:  # noqa: N803
        assert PaginationConfig == {"PageSize": 100}  # MaxResults' most: 750 jobs in 8 calls, not 75 at the default 10
        for start in range(0, self.jobs, 100):
            yield {
                "TrainingJobSummaries": [
                    {"TrainingJobName": f"{HyperParameterTuningJobName}-{i:03d}"}
                    for i in range(start, min(self.jobs, start + 100))
                ]
            }

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        number = int(TrainingJobName.rsplit("-", 1)[1])
        if number in self.stall:
            self.release.wait(10)
        if number in self.fail:
            raise RuntimeError("throttled")
        return {"BillableTimeInSeconds": number + 1}


def test_the_bill_of_750_jobs_adds_every_jobs_seconds() -> None:
    bill = billable_seconds(["r"], Jobs(750))
    assert bill == {"seconds": sum(range(1, 751)), "counted": 750, "jobs": 750}


def test_a_bill_cut_short_by_the_deadline_says_how_much_it_counted() -> None:
    sm = Jobs(750, stall={3, 500})
    bill = billable_seconds(["r"], sm, deadline=0.0)  # already past: take what is done, wait for nothing
    sm.release.set()
    assert bill["jobs"] == 750
    assert bill["counted"] < 750
    assert bill["seconds"] <= sum(range(1, 751)) - 4 - 501


def test_a_listing_that_fails_leaves_the_bill_unknown_and_the_log_says_why(logged) -> None:
    class Unlisted(Jobs):
        def get_paginator(self, operation: str) -> Any:
            raise client_error("AccessDeniedException")

    assert billable_seconds(["r"], Unlisted(3)) == {"seconds": 0, "counted": 0, "jobs": None}
    ((message, extra),) = logged.lines("WARNING")
    assert message == "bill not read: cannot list the training jobs"
    assert "AccessDeniedException" in extra["error"]


def test_a_job_without_billable_time_bills_nothing() -> None:
    class Unbilled(Jobs):  # a job that failed before it started: DescribeTrainingJob has no BillableTimeInSeconds
        def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
            return {} if TrainingJobName.endswith("-000") else super().describe_training_job(TrainingJobName)

    assert billable_seconds(["r"], Unbilled(3)) == {"seconds": 2 + 3, "counted": 3, "jobs": 3}


def test_a_failed_describe_is_left_out_of_the_bill_not_raised() -> None:
    bill = billable_seconds(["r"], Jobs(10, fail={0, 9}))
    assert bill == {"seconds": sum(range(2, 10)), "counted": 8, "jobs": 10}


class Run(Jobs):
    """Three tuning jobs with distinct best accuracies, and their training jobs."""

    ACCURACY = {"r-sgd": 0.71, "r-adam": 0.93, "r-rms": 0.85}

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        name = HyperParameterTuningJobName
        return {
            "HyperParameterTuningJobName": name,
            "BestTrainingJob": {
                "TrainingJobName": f"{name}-007",
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": {"learning_rate": "0.01"},
                "FinalHyperParameterTuningJobObjectiveMetric": {"Value": self.ACCURACY[name]},
            },
        }

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        return {
            **super().describe_training_job(TrainingJobName),
            "HyperParameters": {"optimizer": TrainingJobName.split("-")[1]},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://a/{TrainingJobName}/output/model.tar.gz"},
            "AlgorithmSpecification": {"TrainingImage": "img:1"},
        }


def test_choose_best_takes_the_highest_of_three_and_a_partial_bill_does_not_stop_it() -> None:
    sm = Run(20, stall={5})
    best = best_of_run(("r-sgd", "r-adam", "r-rms"), sm, price_per_hour=3.6, deadline=0.0)
    sm.release.set()
    assert (best.tuning_job_name, best.training_job_name, best.accuracy) == ("r-adam", "r-adam-007", 0.93)
    assert best.model_data_url == "s3://a/r-adam-007/output/model.tar.gz" and best.optimizer == "adam"
    assert best.bill is not None and best.bill.training_jobs == 60
    assert best.bill.complete is False and best.bill.billed_jobs < 60
    assert best.bill.estimated_cost_usd == round(best.bill.billable_seconds / 3600 * 3.6, 2)


def test_the_best_job_carries_its_definition_its_bill_and_what_it_cost() -> None:
    class Defined(Run):
        def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
            described = super().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName)
            described["BestTrainingJob"]["TrainingJobDefinitionName"] = HyperParameterTuningJobName.split("-")[1]
            return described

    best = best_of_run(("r-sgd", "r-adam", "r-rms"), Defined(100), price_per_hour=36.0)
    assert (best.definition_name, best.optimizer, best.billable_seconds) == ("adam", "adam", 8)  # r-adam-007: 7 + 1
    # 3 tuning jobs x (1 + ... + 100) s = 15,150 s = 4.2083 h, at $36/h: $151.50.
    assert best.bill == Bill(billable_seconds=15_150, estimated_cost_usd=151.5, billed_jobs=300, training_jobs=300)


def test_a_best_job_described_without_hyperparameters_or_bill_is_still_chosen() -> None:
    class Sparse(Run):  # DescribeTrainingJob's HyperParameters and BillableTimeInSeconds are optional members
        def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
            described = super().describe_training_job(TrainingJobName)
            return {k: v for k, v in described.items() if k not in ("HyperParameters", "BillableTimeInSeconds")}

    best = best_of_run(("r-sgd", "r-adam", "r-rms"), Sparse(20))
    assert (best.training_job_name, best.optimizer, best.billable_seconds, best.bill) == (
        "r-adam-007",
        "unknown",
        0,
        None,
    )


def test_a_lst_without_line_breaks_is_refused_before_it_fills_memory() -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.lst import chunk_lines

    endless = (b"0\t0\t" + b"a" * 1_000_000 for _ in range(200))  # 200 MB, no line break
    with pytest.raises(DatasetError, match=r"x.lst, line 1: longer than 64 KiB"):
        for _ in chunk_lines(endless, "x.lst"):
            pass


def test_the_validation_client_keeps_listing_timestamps_as_text(s3) -> None:
    from pipeline.aws import clients

    put(s3, ["datasets/d/train/a.png"])
    fast = clients.client("s3", max_pool_connections=34, raw_timestamps=True)
    (obj,) = fast.list_objects_v2(Bucket=BUCKET, Prefix="datasets/d/")["Contents"]
    assert isinstance(obj["LastModified"], str)
    assert fast.meta.config.max_pool_connections == 34
    (default,) = clients.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="datasets/d/")["Contents"]
    assert not isinstance(default["LastModified"], str)


def event_for(key: str) -> dict[str, Any]:
    return {"detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "version-id": "null"}}}


def test_a_recordio_dataset_takes_its_counts_from_the_manifest_and_needs_both_channels(s3) -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.validation import validate_dataset
    from pipeline.settings.tuning_settings import TuningSettings

    manifest = b'{"format": "recordio", "num_classes": 7, "num_training_samples": 900}'
    put(s3, ["datasets/rec/train/a.rec"])
    s3.put_object(Bucket=BUCKET, Key="datasets/rec/manifest.json", Body=manifest)
    defaults = TuningSettings().to_dict()
    with pytest.raises(DatasetError, match=r"datasets/rec/validation/: channel 'validation' is missing or empty"):
        validate_dataset(event_for("datasets/rec/manifest.json"), defaults, s3)
    put(s3, ["datasets/rec/validation/b.rec"])
    run = validate_dataset(event_for("datasets/rec/manifest.json"), defaults, s3)
    assert run.data.to_dict() == {
        "format": "recordio",
        "num_classes": 7,
        "num_training_samples": 900,
        "num_validation_samples": 0,
        # "Image classification algorithm" page: RecordIO channels train and validation, under S3
        # prefixes, application/x-recordio, read in File mode (the job's TrainingInputMode).
        "channels": [
            {
                "name": c,
                "uri": f"s3://{BUCKET}/datasets/rec/{c}/",
                "form": {
                    "content_type": "application/x-recordio",
                    "s3_data_type": "S3Prefix",
                    "record_wrapper": None,
                    "input_mode": None,
                },
                "attribute_names": [],
            }
            for c in ("train", "validation")
        ],
        "test": None,
        "warnings": [],
        "pinned": {},  # RecordIO: the .rec files are the data, read where they are (no index to pin)
    }


def test_broken_deployment_defaults_are_named_as_such(s3) -> None:
    from pipeline.aws.errors import DatasetError
    from pipeline.dataset.validation import validate_dataset

    with pytest.raises(DatasetError, match=r"^deployment defaults \(cdk.json\): key 'epochs' must be an integer"):
        validate_dataset(event_for("datasets/rec/manifest.json"), {"epochs": "many"}, s3)


def test_a_prefix_with_few_folders_is_still_listed_in_many_stretches(s3) -> None:
    """Ground Truth datasets keep images in one folder (here images/<class>/): cut one level
    deeper, the listing still runs side by side, and finds exactly what a flat listing finds."""
    prefix = "datasets/gt/"
    keys = [f"{prefix}images/class{c:02d}/{i}.jpg" for c in range(12) for i in range(30)]
    keys += [f"{prefix}images/loose.jpg", f"{prefix}train.manifest", f"{prefix}validation.manifest"]
    put(s3, keys)
    starts: list[str] = []
    real = s3.get_paginator

    def recording(operation: str) -> Any:
        paginator = real(operation)
        original = paginator.paginate

        def paginate(**kwargs: Any) -> Any:
            if "StartAfter" in kwargs:
                starts.append(kwargs["StartAfter"])
            return original(**kwargs)

        paginator.paginate = paginate
        return paginator

    s3.get_paginator = recording
    listed = list_channel(s3, BUCKET, prefix)
    s3.get_paginator = real
    assert listed == flat_listing(s3, prefix) and len(listed) == 12 * 30 + 3
    assert len(starts) == 13  # images/ and its 12 class folders, instead of 1 stretch
