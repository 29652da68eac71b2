"""The local SageMaker's own promises: a run fetches each channel once, concurrently, and jobs
training side by side are as reproducible as jobs training one after another."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch

from local.sagemaker import search, trainer
from local.sagemaker.base import ApiError
from local.sagemaker.service import LocalSageMaker
from local.sagemaker.tuning import TrainingJob, TuningJob
from tests.sample_request import client_error

pytestmark = pytest.mark.standin

LST_URI, CHANNEL = "s3://ds/datasets/d/train_lst/train.lst", "s3://ds/datasets/d/train/"
IMAGES = 120


class CountingS3:
    """GetObject over a dataset of IMAGES files, counting calls; the first `fail` calls fail."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.calls.append(Key)
            if len(self.calls) <= self.fail:
                raise client_error("SlowDown", 503)
        if Key.endswith(".lst"):
            body = "\n".join(f"{i}\t{i % 3}\tc{i % 3}/{i}.png" for i in range(IMAGES)).encode()
        else:
            body = Key.encode()
        return {"Body": io.BytesIO(body)}


def items(text: str) -> list[tuple[str, int]]:
    return trainer.lst_items(text, LST_URI, CHANNEL)


def test_a_channel_is_fetched_once_for_every_job_that_needs_it_with_its_progress() -> None:
    s3 = CountingS3()
    service = LocalSageMaker(s3_client=lambda: s3)
    events: list[dict[str, Any]] = []
    service.listeners.append(lambda event, detail: events.append(detail) if event == "fetch" else None)
    with ThreadPoolExecutor(max_workers=4) as pool:  # four jobs start at once
        results = list(pool.map(lambda _: service._fetch(LST_URI, items), range(4)))
    assert len(s3.calls) == 1 + IMAGES  # the .lst, then each image once
    assert all(r[1] is results[0][1] for r in results)  # one dict of images, shared
    listed, images = results[0]
    assert listed[5] == (CHANNEL + "c2/5.png", 2)
    assert images[CHANNEL + "c2/5.png"] == b"datasets/d/train/c2/5.png" and len(images) == IMAGES
    assert [e["done"] for e in events] == [50, 100, 120] and {e["total"] for e in events} == {IMAGES}


def test_a_failed_fetch_is_not_remembered_the_next_job_fetches_again() -> None:
    s3 = CountingS3(fail=1)
    service = LocalSageMaker(s3_client=lambda: s3)
    with pytest.raises(Exception, match="SlowDown"):
        service._fetch(LST_URI, items)
    _, images = service._fetch(LST_URI, items)
    assert len(images) == IMAGES and len(s3.calls) == 1 + 1 + IMAGES


def tiny_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(64, 3, 8, 8, generator=generator), torch.randint(0, 2, (64,), generator=generator)


def history(seed: int) -> list[float]:
    hp = trainer.Hyperparameters.parse(
        {
            "num_classes": "2",
            "num_training_samples": "64",
            "image_shape": "3,8,8",
            "epochs": "2",
            "mini_batch_size": "16",
        }
    )
    _, accuracies = trainer.train(
        hp,
        tiny_data(0),
        tiny_data(1),
        seed=seed,
        on_epoch=lambda *_: True,
        stop=threading.Event(),
        log=lambda _: None,
    )
    return accuracies


def test_jobs_training_side_by_side_get_the_same_results_as_one_after_another() -> None:
    alone = [history(seed) for seed in (11, 12, 13, 14)]
    for _ in range(3):  # the race, when there is one, shows in some interleavings only
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(history, (11, 12, 13, 14))) == alone


# ---------------------------------------------------------------------- warm start

FLAT_RANGES = {
    "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam"]}],
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
        {"Name": "beta_2", "MinValue": "0.9", "MaxValue": "0.9999", "ScalingType": "ReverseLogarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "8", "MaxValue": "64"}],
}


def flat_request(name: str, max_jobs: int = 10, parents: tuple[str, ...] = ()) -> dict[str, Any]:
    request: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": FLAT_RANGES,
        },
        "TrainingJobDefinition": {"StaticHyperParameters": {"epochs": "1"}},
    }
    if parents:
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in parents],
            "WarmStartType": "TransferLearning",
        }
    return request


def parent_jobs(good: str, n: int) -> list[search.Observation]:
    """n finished jobs: the `good` optimizer at a small learning rate scores 0.9, the rest 0.2."""
    return [
        search.Observation(
            None,
            {
                "optimizer": ("sgd", "adam")[i % 2],
                "learning_rate": repr(0.0005 * (1 + i)),
                "beta_2": "0.99",
                "mini_batch_size": str(8 + i),
            },
            0.9 if ("sgd", "adam")[i % 2] == good else 0.2,
        )
        for i in range(n)
    ]


def test_a_warm_start_tells_the_search_what_its_parents_found_before_it_asks() -> None:
    definitions = search.definitions_of(flat_request("child"))
    choices = {}
    for good in ("sgd", "adam"):  # the first suggestions follow the parents, whichever won there
        study = search.make_study(flat_request("child"), seed=3)
        assert search.warm_start(study, definitions, parent_jobs(good, 12)) == 12
        asked = [search.sample(study.ask(), definitions)[1]["optimizer"] for _ in range(6)]
        choices[good] = asked.count(good)
    assert choices["sgd"] >= 5 and choices["adam"] >= 5, choices
    cold = search.make_study(flat_request("child"), seed=3)  # without parents: the first 5 are random
    asked = [search.sample(cold.ask(), definitions)[1]["optimizer"] for _ in range(6)]
    assert 1 <= asked.count("adam") <= 5


def test_a_parents_job_outside_the_new_ranges_is_left_out_and_values_keep_their_scaling() -> None:
    definitions = search.definitions_of(flat_request("child"))
    jobs = parent_jobs("adam", 4)
    outside = [
        search.Observation(None, {**jobs[0].tuned, "learning_rate": "0.9"}, 0.5),  # above MaxValue
        search.Observation(None, {**jobs[0].tuned, "optimizer": "rmsprop"}, 0.5),  # not a value now
        search.Observation(None, {k: v for k, v in jobs[0].tuned.items() if k != "beta_2"}, 0.5),  # was static
    ]
    study = search.make_study(flat_request("child"), seed=0)
    assert search.warm_start(study, definitions, jobs + outside) == 4
    first = study.trials[0]
    # ReverseLogarithmic draws 1 - x: a parent's beta_2 of 0.99 is 0.01 in the search's own terms.
    assert first.params == {
        "optimizer": "sgd",
        "learning_rate": 0.0005,
        "beta_2": pytest.approx(0.01),
        "mini_batch_size": 8,
    }
    assert [t.value for t in study.trials] == [0.2, 0.9, 0.2, 0.9]


class Finished:
    def __init__(self, status: str, jobs: int, request: dict[str, Any] | None = None) -> None:
        self.status, self.jobs, self.name = status, [object()] * jobs, "parent"
        self.request = request or flat_request("parent")


def retyped() -> dict[str, Any]:
    """The parent's space with mini_batch_size continuous instead of integer."""
    request = flat_request("parent")
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"] = dict(FLAT_RANGES)
    ranges["IntegerParameterRanges"] = []
    ranges["ContinuousParameterRanges"] = [
        *FLAT_RANGES["ContinuousParameterRanges"],
        {"Name": "mini_batch_size", "MinValue": "8", "MaxValue": "64"},
    ]
    return request


def one_more_static() -> dict[str, Any]:
    request = flat_request("parent")
    request["TrainingJobDefinition"] = {"StaticHyperParameters": {"epochs": "1", "num_layers": "18"}}
    return request


# SageMaker endpoints and quotas: 750 training jobs per tuning job, parents' jobs included
# (API reference, HyperParameterTuningJobWarmStartConfig).
@pytest.mark.parametrize(
    ("parent", "max_jobs", "error"),
    [
        (None, 10, "ResourceNotFound"),
        (Finished("InProgress", 5), 10, "ValidationException"),
        (Finished("Completed", 741), 10, "ValidationException"),
        (Finished("Completed", 740), 10, None),
        (Finished("Stopped", 700), 50, None),
        (Finished("Failed", 3), 10, None),  # a terminal state
        (Finished("Completed", 3, retyped()), 10, "ValidationException"),
        (Finished("Completed", 3, one_more_static()), 10, "ValidationException"),
    ],
)
def test_the_local_service_refuses_the_parents_sagemaker_refuses(parent: Any, max_jobs: int, error: str | None) -> None:
    service = LocalSageMaker(s3_client=lambda: CountingS3())
    if parent is not None:
        service.tuning_jobs["parent"] = parent
    request = flat_request("child", max_jobs=max_jobs, parents=("parent",))
    if error is None:
        service._check_parents(request)
        return
    with pytest.raises(ApiError) as raised:
        service._check_parents(request)
    assert raised.value.code == error


def test_a_warm_started_job_learns_from_its_parents_finished_jobs_only() -> None:
    service = LocalSageMaker(s3_client=lambda: CountingS3())
    parent = TuningJob(name="parent", request=flat_request("parent"), status="Completed")
    definition = search.definitions_of(parent.request)[0]
    for status, history in (("Completed", [0.3, 0.8]), ("Failed", []), ("Stopped", [0.1]), ("Completed", [0.6])):
        tuned = {"optimizer": "adam", "learning_rate": "0.001", "beta_2": "0.99", "mini_batch_size": "16"}
        parent.jobs.append(TrainingJob("t", "parent", definition, tuned, {}, status=status, history=history))
    service.tuning_jobs["parent"] = parent
    observed = service.parent_observations(flat_request("child", parents=("parent",)))
    assert [o.objective for o in observed] == [0.8, 0.6]  # each job's final objective
    assert service.parent_observations(flat_request("cold")) == []


def test_the_search_of_a_warm_started_job_starts_from_its_parents(monkeypatch: pytest.MonkeyPatch) -> None:
    service = LocalSageMaker(s3_client=lambda: CountingS3())
    parent = TuningJob(name="parent", request=flat_request("parent"), status="Completed")
    definition = search.definitions_of(parent.request)[0]
    for o in parent_jobs("adam", 12):
        parent.jobs.append(
            TrainingJob("t", "parent", definition, o.tuned, {}, status="Completed", history=[o.objective])
        )
    service.tuning_jobs["parent"] = parent
    child = TuningJob(name="child", request=flat_request("child", max_jobs=4, parents=("parent",)))
    service.tuning_jobs["child"] = child

    def train(t: TrainingJob, trial: Any, seed: int) -> None:  # no training: the search is under test
        t.status, t.history = "Completed", [0.5]

    monkeypatch.setattr(service, "_train", train)
    service._search(child)
    # The parents' jobs scored adam 0.9 and sgd 0.2: a search that knows them asks for adam.
    assert [t.tuned["optimizer"] for t in child.jobs] == ["adam"] * 4


class Objects:
    """A bucket in memory: GetObject and PutObject."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[f"s3://{Bucket}/{Key}"])}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803
        self.objects[f"s3://{Bucket}/{Key}"] = Body
        return {}


# CreateTransformJob (botocore's model of the API): MaxPayloadInMB "must be greater than, or equal
# to, the size of a single record"; "The default value is 6 MB".
@pytest.mark.parametrize(
    ("payload_mb", "image_bytes", "fails"),
    [(None, 6_000_000, False), (None, 6_000_001, True), (7, 6_000_001, False)],
)
def test_a_local_transform_fails_on_a_record_over_its_max_payload(
    monkeypatch: pytest.MonkeyPatch, payload_mb: int | None, image_bytes: int, fails: bool
) -> None:
    from local.sagemaker.transform import TransformJob

    monkeypatch.setattr(trainer, "predictor", lambda archive: lambda image: [0.25, 0.75])
    s3 = Objects(
        {
            "s3://a/model.tar.gz": b"m",
            "s3://a/in.manifest": b'[{"prefix": "s3://d/test/"}, "c0/a.png", "c1/b.png"]',
            "s3://d/test/c0/a.png": b"x",
            "s3://d/test/c1/b.png": b"y" * image_bytes,
        }
    )
    service = LocalSageMaker(s3_client=lambda: s3)
    service.models["m"] = {"PrimaryContainer": {"ModelDataUrl": "s3://a/model.tar.gz"}}
    request: dict[str, Any] = {
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://a/in.manifest"}}
        },
        "TransformOutput": {"S3OutputPath": "s3://a/out/"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }
    if payload_mb is not None:
        request["MaxPayloadInMB"] = payload_mb
    job = TransformJob("t", request)
    service.quotas.reserve("ml.m5.xlarge", "transform", 1)  # as CreateTransformJob does
    service._run_transform(job)
    assert job.status == ("Failed" if fails else "Completed")
    assert not any(service.quotas.reserved.values())  # a failed transform gives its instance back too
    if fails:
        assert (
            "s3://d/test/c1/b.png: a record of 6,000,001 bytes, more than MaxPayloadInMB (6 MB)" in job.failure_reason
        )
    else:
        assert json.loads(s3.objects["s3://a/out/c1/b.png.out"]) == [0.25, 0.75]


def test_the_local_account_counts_spot_training_against_its_own_quota() -> None:
    from local.sagemaker.quotas import AccountQuotas, QuotaError
    from local.sagemaker.tuning import reservation

    definition = {"ResourceConfig": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1}}
    limits = {"HyperParameterTuningJobConfig": {"ResourceLimits": {"MaxParallelTrainingJobs": 2}}}
    spot = {**limits, "TrainingJobDefinition": {**definition, "EnableManagedSpotTraining": True}}
    assert reservation(spot) == ("ml.g4dn.xlarge", "spot training", 2)
    assert reservation({**limits, "TrainingJobDefinition": definition}) == ("ml.g4dn.xlarge", "training", 2)
    quotas = AccountQuotas(
        {"ml.g4dn.xlarge for spot training job usage": 1, "ml.g4dn.xlarge for training job usage": 4}
    )
    quotas.reserve("ml.g4dn.xlarge", "training", 2)  # on-demand: within its 4
    with pytest.raises(QuotaError, match="'ml.g4dn.xlarge for spot training job usage' is 1 Instances"):
        quotas.reserve("ml.g4dn.xlarge", "spot training", 2)
