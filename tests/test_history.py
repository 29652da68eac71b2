"""The automatic choice of warm-start parents from the platform's history (issue 21): which
earlier runs qualify, best first; at most 5 parents; a deleted parent. The rules written down
here are the pipeline's, from the issue: "a new version of a dataset starts from its previous
completed run, and a first run of a new dataset from the most similar earlier runs (same number
of classes, similar size)", similar meaning between half and twice the training images. The
limit of 5 is SageMaker's: "ParentHyperParameterTuningJobs ... Maximum number of 5 items" (API
reference, HyperParameterTuningJobWarmStartConfig)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.start_tuning import candidates_for, parents_sagemaker_accepts, read_record
from pipeline.aws.s3_layout import previous_run_key, similar_run_key
from pipeline.contract import ParentChoice, Run, Tuning
from pipeline.evaluation.registry import metrics_document
from pipeline.messages import success_message
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.history import RunRecord, candidates
from pipeline.tuning.request import Destinations, build_tuning_requests
from tests.sample_run import BEST, REGISTERED, RUN
from tests.test_warm_start import Parents, parent

FLAT = TuningSettings(layout="flat", warm_start="auto", image_shape="3,224,224")
# digits: 10 classes, 1,437 training images (tests/sample_run.py)
NEW = dataclasses.replace(RUN, settings=FLAT)


def record(
    dataset: str, images: int = 1437, classes: int = 10, layout: str = "flat", shape: str = "3,224,224"
) -> RunRecord:
    run_id = f"{dataset}-aaaaaaaaaa"
    return RunRecord(dataset, run_id, layout, (run_id,), classes, images, shape)


def chosen(run: Run, previous: RunRecord | None, others: list[RunRecord]) -> list[str]:
    return [c.record.dataset for c in candidates(run, previous, others)]


def test_a_similar_run_has_the_same_classes_shape_and_layout_and_half_to_twice_the_images() -> None:
    run = dataclasses.replace(NEW, data=dataclasses.replace(NEW.data, num_training_samples=1400))
    others = [
        record("half", images=700),  # exactly half
        record("twice", images=2800),  # exactly twice
        record("too-few", images=699),
        record("too-many", images=2801),
        record("classes", classes=9, images=1400),
        record("shape", shape="3,128,128", images=1400),
        record("layout", layout="job_per_optimizer", images=1400),
        record("digits", images=1400),  # this dataset's own run is the previous run, not a similar one
        dataclasses.replace(record("unknown"), num_training_samples=None),  # an old record
    ]
    assert sorted(chosen(run, None, others)) == ["half", "twice"]


def test_the_closest_in_size_comes_first_and_a_tie_goes_to_the_most_recent() -> None:
    # `others` come newest first (StartTuning sorts the listing by LastModified)
    others = [record("far", 2800), record("tie-newer", 1500), record("tie-older", 1500), record("exact", 1437)]
    assert chosen(NEW, None, others) == ["exact", "tie-newer", "tie-older", "far"]
    # |log(1500/1437)| = 0.0429 < |log(1374/1437)| = 0.0448, whichever is newer
    assert chosen(NEW, None, [record("lower", 1374), record("higher", 1500)]) == ["higher", "lower"]


def test_the_previous_run_of_another_layout_is_no_parent() -> None:
    # a definitions run's one tuning job would map onto a flat job of the same name suffix ("")
    previous = record("digits", layout="definitions")
    assert chosen(NEW, previous, []) == []
    assert chosen(NEW, previous, [record("other")]) == ["other"]


def test_the_previous_run_of_the_dataset_comes_first_whatever_its_size() -> None:
    previous = record("digits", images=5000)  # a new version may have grown past 2x
    assert chosen(NEW, previous, [record("other")]) == ["digits", "other"]
    (first, _) = candidates(NEW, previous, [record("other")])
    assert first.previous and first.why == "the previous run of this dataset (digits-aaaaaaaaaa)"


def test_previous_takes_only_the_datasets_own_run_and_off_or_definitions_take_none() -> None:
    previous, others = record("digits"), [record("other")]
    only_own = dataclasses.replace(RUN, settings=dataclasses.replace(FLAT, warm_start="previous"))
    assert chosen(only_own, previous, others) == ["digits"]
    assert (
        chosen(dataclasses.replace(RUN, settings=dataclasses.replace(FLAT, warm_start="off")), previous, others) == []
    )
    definitions = dataclasses.replace(RUN, settings=dataclasses.replace(FLAT, layout="definitions"))
    assert chosen(definitions, previous, others) == []
    # this very run's record (a retried execution after RegisterModel) is not its own parent
    assert chosen(NEW, dataclasses.replace(previous, run_id=RUN.run_id), []) == []


def request_for(run: Run, parents: dict[str, list[str]] | None = None) -> dict[str, Any]:
    dest = Destinations("arn:aws:iam::123456789012:role/r", "image:1", "s3://art/out/", "s3://art/ckpt/")
    (request,) = build_tuning_requests(run.run_id, run.settings, run.data, dest, warm_start_parents=parents)
    return request


def described_like(run: Run, images: int = 1437) -> dict[str, Any]:
    """A finished earlier job with this run's search space, trained on another dataset of `images`
    training images, as DescribeHyperParameterTuningJob tells it (with SageMaker's own objective)."""
    request = request_for(run)
    definition = request["TrainingJobDefinition"]
    static = {
        **definition["StaticHyperParameters"],
        "num_training_samples": str(images),
        "_tuning_objective_metric": "validation:accuracy",
    }
    return {
        **parent(launched=30),
        "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
        "TrainingJobDefinition": {**definition, "StaticHyperParameters": static},
    }


class Counting(Parents):
    def __init__(self, **described: dict[str, Any]) -> None:
        super().__init__(**described)
        self.asked: list[str] = []

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        self.asked.append(HyperParameterTuningJobName)
        return super().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=HyperParameterTuningJobName)


def test_at_most_five_parents_the_closest_five_and_the_request_carries_them() -> None:
    sizes = [1437, 1400, 1500, 1300, 1600, 1200, 1700]  # seven similar runs
    others = [record(f"data{i}", n) for i, n in enumerate(sizes)]
    sm = Counting(**{r.run_id: described_like(NEW, r.num_training_samples or 0) for r in others})
    offered = candidates(NEW, None, others)
    parents, weighed = parents_sagemaker_accepts(sm, offered, [request_for(NEW)], NEW.run_id)
    assert parents == {NEW.run_id: [f"data{i}-aaaaaaaaaa" for i in (0, 1, 2, 3, 4)]}  # 1437, 1400, 1500, 1300, 1600
    assert [p.taken for p in weighed] == [True] * 5  # the sixth and seventh were not even described
    assert sm.asked == [f"data{i}-aaaaaaaaaa" for i in range(5)]
    warm = request_for(NEW, parents)["WarmStartConfig"]
    assert warm["WarmStartType"] == "TransferLearning"
    assert [p["HyperParameterTuningJobName"] for p in warm["ParentHyperParameterTuningJobs"]] == parents[NEW.run_id]


def test_a_deleted_parent_is_left_out_with_its_reason_and_the_next_takes_its_place() -> None:
    others = [record(f"data{i}", 1437 + i) for i in range(6)]
    sm = Parents(**{r.run_id: described_like(NEW) for r in others if r.dataset != "data1"})  # data1's job was deleted
    parents, weighed = parents_sagemaker_accepts(sm, candidates(NEW, None, others), [request_for(NEW)], NEW.run_id)
    assert parents[NEW.run_id] == [f"data{i}-aaaaaaaaaa" for i in (0, 2, 3, 4, 5)]
    left = [p for p in weighed if not p.taken]
    assert [(p.parent, p.why) for p in left] == [("data1-aaaaaaaaaa", "it does not exist any more")]


def test_the_previous_run_taken_is_the_only_parent_and_if_deleted_the_similar_runs_are_tried() -> None:
    previous, others = record("digits"), [record("other")]
    offered = candidates(NEW, previous, others)
    both = Parents(**{"digits-aaaaaaaaaa": described_like(NEW), "other-aaaaaaaaaa": described_like(NEW)})
    assert parents_sagemaker_accepts(both, offered, [request_for(NEW)], NEW.run_id)[0] == {
        NEW.run_id: ["digits-aaaaaaaaaa"]
    }
    gone = Parents(**{"other-aaaaaaaaaa": described_like(NEW)})
    assert parents_sagemaker_accepts(gone, offered, [request_for(NEW)], NEW.run_id)[0] == {
        NEW.run_id: ["other-aaaaaaaaaa"]
    }


@mock_aws
def test_start_tuning_reads_the_records_register_model_leaves_and_the_notice_says_why() -> None:
    from handlers.register_model import register
    from handlers.start_tuning import requests_for
    from pipeline.contract import Tuning

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="art")
    sm_registry = boto3.client("sagemaker", region_name="us-east-1")
    sm_registry.create_model_package_group(ModelPackageGroupName="g")
    # an earlier run of another 10-class dataset, registered by the pipeline itself
    earlier = dataclasses.replace(
        NEW,
        run_id="cifar-aaaaaaaaaa",
        dataset=dataclasses.replace(RUN.dataset, name="cifar"),
        data=dataclasses.replace(RUN.data, num_training_samples=2000),
    )
    register(
        earlier,
        Tuning(("cifar-aaaaaaaaaa",), ("cifar-aaaaaaaaaa",), (), "s3://art/t/"),
        BEST,
        sm_registry,
        s3,
        group="g",
        bucket="art",
    )
    stored = json.loads(s3.get_object(Bucket="art", Key=similar_run_key(10, "flat", "cifar"))["Body"].read())
    assert stored == json.loads(s3.get_object(Bucket="art", Key=previous_run_key("cifar"))["Body"].read())
    assert (stored["num_classes"], stored["num_training_samples"], stored["layout"]) == (10, 2000, "flat")
    # a 10-class dataset too far in size, and a 9-class one, are listed or kept apart
    far = record("far", images=9000)
    s3.put_object(Bucket="art", Key=similar_run_key(10, "flat", "far"), Body=json.dumps(far.to_dict()).encode())
    s3.put_object(
        Bucket="art",
        Key=similar_run_key(9, "flat", "nine"),
        Body=json.dumps(record("nine", classes=9).to_dict()).encode(),
    )
    assert [c.record.dataset for c in candidates_for(s3, "art", NEW)] == ["cifar"]

    sm = Parents(**{"cifar-aaaaaaaaaa": described_like(NEW, 2000)})
    dest = Destinations("arn:aws:iam::123456789012:role/r", "image:1", "s3://art/out/", "s3://art/ckpt/")
    (request,), weighed = requests_for(NEW, sm, s3, "art", dest, "arn:aws:states:us-east-1:123456789012:execution:m:e")
    assert request["WarmStartConfig"]["ParentHyperParameterTuningJobs"] == [
        {"HyperParameterTuningJobName": "cifar-aaaaaaaaaa"}
    ]
    tuning = Tuning((NEW.run_id,), (NEW.run_id,), (), "s3://art/t/", tuple(weighed))
    document = metrics_document(BEST, NEW, None, tuning)["warm_start"]
    assert document["setting"] == "auto"
    assert [(p["job"], p["parent"], p["taken"]) for p in document["parents"]] == [
        (NEW.run_id, "cifar-aaaaaaaaaa", True)
    ]
    notice = success_message(NEW, BEST, REGISTERED, "us-east-1", tuning=tuning).message
    assert (
        "Warm start: 1 parent(s) taken (auto):\n- digits-0123456789 from cifar-aaaaaaaaaa: a similar run "
        "(cifar-aaaaaaaaaa of dataset cifar): 10 classes and 3,224,224 images like this one, 2,000 training "
        "images against 1,437\n"
    ) in notice


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        (dataclasses.replace(FLAT, layout="definitions"), "Warm start: none, a cold start (layout definitions"),
        (FLAT, "Warm start: none, a cold start (no earlier run of this dataset or a similar one that SageMaker would"),
    ],
)
def test_a_cold_start_says_why(settings: TuningSettings, line: str) -> None:
    run = dataclasses.replace(RUN, settings=settings)
    assert line in success_message(run, BEST, REGISTERED, "us-east-1").message
    off = dataclasses.replace(RUN, settings=dataclasses.replace(settings, warm_start="off"))
    assert "Warm start" not in success_message(off, BEST, REGISTERED, "us-east-1").message


def test_listing_sorts_newest_first_before_reading_at_most_fifty() -> None:
    from handlers.start_tuning import similar_records
    from pipeline.tuning.history import MAX_RECORDS_READ

    now = datetime(2026, 12, 1, tzinfo=UTC)
    keys = [(f"runs/_classes/10/flat/d{i:02}.json", now + timedelta(minutes=i)) for i in range(60)]

    class Listing:
        def __init__(self) -> None:
            self.read: list[str] = []

        def get_paginator(self, name: str) -> Any:
            assert name == "list_objects_v2"
            pages = [
                {"Contents": [{"Key": k, "LastModified": t} for k, t in keys[:30]]},
                {"Contents": [{"Key": k, "LastModified": t} for k, t in keys[30:]]},
            ]
            return type(
                "P",
                (),
                {
                    "paginate": lambda self, **kw: (
                        pages if kw == {"Bucket": "art", "Prefix": "runs/_classes/10/flat/"} else []
                    )
                },
            )()

        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
            import io

            self.read.append(Key)
            name = Key.rsplit("/", 1)[1].removesuffix(".json")
            return {"Body": io.BytesIO(json.dumps(record(name).to_dict()).encode())}

    s3 = Listing()
    records = similar_records(s3, "art", 10, "flat")
    assert MAX_RECORDS_READ == 50
    assert [r.dataset for r in records] == [f"d{i:02}" for i in range(59, 9, -1)]  # the 50 newest, newest first
    assert len(s3.read) == 50


def test_at_most_ten_candidates_are_described_per_job_before_it_starts_cold() -> None:
    # twelve similar runs whose jobs searched other hyperparameters: SageMaker would refuse them all
    others = [record(f"data{i:02}", 1437 + i) for i in range(12)]
    other_space = {**described_like(NEW), "TrainingJobDefinition": {"StaticHyperParameters": {"epochs": "5"}}}
    sm = Counting(**{r.run_id: other_space for r in others})
    parents, weighed = parents_sagemaker_accepts(sm, candidates(NEW, None, others), [request_for(NEW)], NEW.run_id)
    assert parents == {}
    assert sm.asked == [f"data{i:02}-aaaaaaaaaa" for i in range(10)]
    assert {p.why for p in weighed} == {"the hyperparameters (static plus tunable) are not the same"}


def test_a_record_that_is_not_one_is_skipped_not_fatal() -> None:
    from tests.test_warm_start import Objects

    for body in (b"not json", b'{"layout": "flat"}', b"[1, 2]"):
        assert read_record(Objects(body), "art", "runs/digits/latest.json", "digits") is None


def test_the_notice_lists_the_parents_taken_and_the_first_three_left_out() -> None:
    weighed = [ParentChoice(NEW.run_id, "a", True, "the previous run of this dataset (a)")] + [
        ParentChoice(NEW.run_id, f"gone{i}", False, "it does not exist any more") for i in range(5)
    ]
    tuning = Tuning((NEW.run_id,), (NEW.run_id,), (), "s3://art/t/", tuple(weighed))
    notice = success_message(NEW, BEST, REGISTERED, "us-east-1", tuning=tuning).message
    assert (
        "Warm start: 1 parent(s) taken (auto):\n"
        f"- {NEW.run_id} from a: the previous run of this dataset (a)\n"
        f"- {NEW.run_id} not from gone0: it does not exist any more\n"
        f"- {NEW.run_id} not from gone1: it does not exist any more\n"
        f"- {NEW.run_id} not from gone2: it does not exist any more\n"
        "- and 2 more left out (the metrics document lists them)\n"
    ) in notice
    assert len(metrics_document(BEST, NEW, None, tuning)["warm_start"]["parents"]) == 6
