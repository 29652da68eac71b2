"""Which parent SageMaker takes for a warm start. Every expectation below comes from the
SageMaker Developer Guide, "Run a Warm Start Hyperparameter Tuning Job" → "Warm Start Tuning
Restrictions", and the API reference of HyperParameterTuningJobWarmStartConfig (parents' jobs
count against the 750 training jobs of a tuning job, SageMaker endpoints and quotas)."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.start_tuning import parents_sagemaker_accepts, read_record
from pipeline.tuning.history import Candidate, RunRecord
from pipeline.tuning.warm_start import refusal
from tests.fakes import Fake
from tests.sample_request import client_error


def job(max_jobs: int = 30, **static: str) -> dict[str, Any]:
    """A flat tuning job over three hyperparameters, one of each type, and three static ones."""
    return {
        "HyperParameterTuningJobConfig": {
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop", "nag"]}],
                "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.5"}],
                "IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "8", "MaxValue": "64"}],
            },
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"num_training_samples": "1200", "epochs": "30", "num_layers": "18", **static}
        },
    }


def parent(status: str = "Completed", launched: int = 30, **static: str) -> dict[str, Any]:
    # DescribeHyperParameterTuningJob shows the objective among the static hyperparameters.
    return {
        **job(**static, _tuning_objective_metric="validation:accuracy"),
        "HyperParameterTuningJobStatus": status,
        "TrainingJobStatusCounters": {"Completed": launched, "NonRetryableError": 0, "Stopped": 0},
    }


def make_static(request: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    request = copy.deepcopy(request)
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    for kind in ranges.values():
        kind[:] = [r for r in kind if r["Name"] != name]
    request["TrainingJobDefinition"]["StaticHyperParameters"][name] = value
    return request


@pytest.mark.parametrize("status", ["Completed", "Stopped", "Failed"])  # "a terminal state"
def test_a_finished_parent_with_new_data_is_taken(status: str) -> None:
    assert refusal(parent(status), job(num_training_samples="1500"), launched=0) is None


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_a_parent_still_running_is_refused(status: str) -> None:
    assert refusal(parent(status), job(), launched=0) == f"it is {status}, not finished"


def test_parents_jobs_count_against_the_750_of_the_new_tuning_job() -> None:
    assert refusal(parent(launched=700), job(max_jobs=50), launched=0) is None  # exactly 750
    assert "more than the 750" in str(refusal(parent(launched=701), job(max_jobs=50), launched=0))
    # with the jobs of the parents already taken for this job
    assert "more than the 750" in str(refusal(parent(launched=600), job(max_jobs=50), launched=101))


def test_the_hyperparameters_and_their_types_must_stay_the_same() -> None:
    extra = job(precision_dtype="float16")  # one more static hyperparameter than the parent had
    assert refusal(parent(), extra, launched=0) == "the hyperparameters (static plus tunable) are not the same"
    retyped = job()
    ranges = retyped["HyperParameterTuningJobConfig"]["ParameterRanges"]
    ranges["ContinuousParameterRanges"].append({"Name": "mini_batch_size", "MinValue": "8", "MaxValue": "64"})
    ranges["IntegerParameterRanges"] = []
    assert refusal(parent(), retyped, launched=0) == "'mini_batch_size' was integer, now continuous"
    # tunable to static and back is allowed: the total stays the same
    assert refusal(parent(), make_static(job(), "learning_rate", "0.01"), launched=0) is None


def test_at_most_ten_changes_counting_each_value_of_a_categorical_made_static() -> None:
    four = make_static(job(), "optimizer", "sgd")  # a categorical of 4 values made static: 4 changes
    assert refusal(parent(), four, launched=0) is None
    # + 3 static values changed, 2 changes each in the guide's example: 10, still taken
    ten = make_static(job(num_training_samples="9", epochs="9", num_layers="50"), "optimizer", "sgd")
    assert refusal(parent(), ten, launched=0) is None
    eleven = make_static(ten, "learning_rate", "0.1")
    assert (
        refusal(parent(), eleven, launched=0) == "11 changes from tunable to static and of static values, more than 10"
    )


class Parents(Fake):
    """DescribeHyperParameterTuningJob over named parents; a name not here does not exist."""

    def __init__(self, **described: dict[str, Any]) -> None:
        self.described = described

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        if HyperParameterTuningJobName not in self.described:
            error = {"Error": {"Code": "ResourceNotFound", "Message": "not found"}}
            raise ClientError(error, "DescribeHyperParameterTuningJob")  # type: ignore[arg-type]
        return self.described[HyperParameterTuningJobName]


def offered(*parents: str) -> list[Candidate]:
    """Earlier runs of other datasets, one tuning job each (a flat layout), in this order."""
    return [
        Candidate(RunRecord(f"data{i}", name, "flat", (name,)), f"similar {name}", False)
        for i, name in enumerate(parents)
    ]


def test_the_parents_of_one_job_share_its_750_jobs_and_a_deleted_parent_is_left_out() -> None:
    request = {**job(max_jobs=50), "HyperParameterTuningJobName": "new"}
    sm = Parents(first=parent(launched=400), second=parent(launched=300), third=parent(launched=301))
    # 50 + 400 + 300 = 750: both taken; the third would make 1,051 with them
    chosen, weighed = parents_sagemaker_accepts(sm, offered("first", "gone", "second", "third"), [request], "new")
    assert chosen == {"new": ["first", "second"]}
    assert [(p.parent, p.taken) for p in weighed] == [
        ("first", True),
        ("gone", False),
        ("second", True),
        ("third", False),
    ]
    assert weighed[1].why == "it does not exist any more"
    assert parents_sagemaker_accepts(sm, offered("gone"), [request], "new")[0] == {}


def test_an_error_other_than_not_found_is_not_taken_for_a_missing_parent() -> None:
    class Denied:
        def describe_hyper_parameter_tuning_job(self, **_: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Describe")

    with pytest.raises(ClientError):
        parents_sagemaker_accepts(Denied(), offered("first"), [{**job(), "HyperParameterTuningJobName": "new"}], "new")


def test_a_parent_described_with_fewer_members_is_judged_not_crashed_on() -> None:
    # DescribeHyperParameterTuningJob leaves out what a job did not have: no range of a type, no
    # single TrainingJobDefinition (a parent of several definitions), no counters before any job ran.
    sparse = make_static(parent(), "mini_batch_size", "32")
    del sparse["HyperParameterTuningJobConfig"]["ParameterRanges"]["IntegerParameterRanges"]  # none left: not listed
    assert refusal(sparse, make_static(job(), "mini_batch_size", "32"), launched=0) is None
    several = {k: v for k, v in parent().items() if k != "TrainingJobDefinition"}
    several["HyperParameterTuningJobConfig"] = {
        k: v for k, v in several["HyperParameterTuningJobConfig"].items() if k != "ParameterRanges"
    }
    assert refusal(several, job(), launched=0) == "the hyperparameters (static plus tunable) are not the same"
    unstarted = {k: v for k, v in parent().items() if k != "TrainingJobStatusCounters"}
    assert refusal(unstarted, job(max_jobs=750), launched=0) is None  # none of its jobs counts against 750
    request = {**job(), "HyperParameterTuningJobName": "new"}
    assert parents_sagemaker_accepts(Parents(first=unstarted), offered("first"), [request], "new")[0] == {
        "new": ["first"]
    }
    assert parents_sagemaker_accepts(Parents(), [], [{**job(), "HyperParameterTuningJobName": "new"}], "new") == (
        {},
        [],
    )


class Objects(Fake):
    SERVICE = "s3"

    def __init__(self, body: bytes | None = None, error: str = "NoSuchKey") -> None:
        self.body, self.error = body, error

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        assert (Bucket, Key) == ("art", "runs/digits/latest.json")
        if self.body is None:
            raise client_error(self.error)
        return {"Body": io.BytesIO(self.body)}


def test_a_record_never_written_is_none_and_other_errors_are_raised() -> None:
    assert read_record(Objects(None, "NoSuchKey"), "art", "runs/digits/latest.json", "digits") is None
    with pytest.raises(ClientError):
        read_record(Objects(None, "AccessDenied"), "art", "runs/digits/latest.json", "digits")


def test_a_record_written_before_the_datas_facts_were_recorded_is_read_without_them() -> None:
    old = {"run_id": "digits-aaaaaaaaaa", "layout": "flat", "tuning_jobs": ["digits-aaaaaaaaaa"]}
    record = read_record(Objects(json.dumps(old).encode()), "art", "runs/digits/latest.json", "digits")
    assert record == RunRecord("digits", "digits-aaaaaaaaaa", "flat", ("digits-aaaaaaaaaa",))
