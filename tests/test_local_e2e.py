"""Local mode end to end: the synthesized workflow, the real handlers, real CPU training.

Outcomes are read through the APIs a user would use: the model registry, S3, the topic.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from local.api_model import response_errors
from local.harness import LocalPipeline
from tests.oracles import OPTIMIZER_READS, READ_BY_ALL, seed_table
from tools.dataset import prepare, upload

pytestmark = pytest.mark.e2e

# A small budget (4 jobs of 3 epochs) over ranges narrowed through the manifest, as a user
# checking a dataset on a sample would: every configuration in them trains.
TINY = {
    "max_training_jobs": 4,
    "max_parallel_jobs": 2,
    "epochs": 3,
    "ranges": {
        "learning_rate": {"min": 0.005, "max": 0.02},
        "mini_batch_size": {"min": 16, "max": 64},
        "momentum": {"min": 0.5, "max": 0.95},
        "weight_decay": {"min": 1e-6, "max": 1e-3, "scaling": "Logarithmic"},
        "beta_1": {"min": 0.8, "max": 0.95},
        "beta_2": {"min": 0.9, "max": 0.999},
        "eps": {"min": 1e-8, "max": 1e-6, "scaling": "Logarithmic"},
        "gamma": {"min": 0.8, "max": 0.99},
    },
}


@pytest.fixture(scope="module")
def prepared(sample_images: Path, tmp_path_factory: pytest.TempPathFactory):
    return prepare(sample_images, tmp_path_factory.mktemp("ds") / "digits", tuning=TINY, progress=False)


def _read(pipeline: LocalPipeline, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return pipeline.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def finished_run(local_app, prepared, tmp_path_factory) -> dict:
    """One run, read back through the user's APIs; the local services are shut down after."""
    outdir, prefix = local_app
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path_factory.mktemp("logs") / "lambda.jsonl") as pipeline:
        put = upload(prepared.root, pipeline.client("s3"), pipeline.deployed.datasets_bucket, "digits", progress=False)
        event = pipeline.object_created_event("datasets/digits/manifest.json", put)
        execution = pipeline.deliver(event)
        assert execution is not None
        result = pipeline.wait(execution, timeout=900)
        sm = pipeline.client("sagemaker")
        packages = sm.list_model_packages(ModelPackageGroupName=pipeline.deployed.model_package_group)[
            "ModelPackageSummaryList"
        ]
        package = sm.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"]) if packages else {}
        metrics = _read(pipeline, package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]) if package else b"{}"
        artifact_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] if package else ""
        service = pipeline.sagemaker_service
        (tuning_name,) = service.tuning_jobs
        first_training = next(iter(service.training_jobs))
        responses = {
            "DescribeHyperParameterTuningJob": service.call(
                "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": tuning_name}
            ),
            "ListTrainingJobsForHyperParameterTuningJob": service.call(
                "ListTrainingJobsForHyperParameterTuningJob",
                {"HyperParameterTuningJobName": tuning_name, "MaxResults": 2},
            ),
            "DescribeTrainingJob": service.call("DescribeTrainingJob", {"TrainingJobName": first_training}),
            "DescribeModelPackage": service.call(
                "DescribeModelPackage", {"ModelPackageName": packages[0]["ModelPackageArn"]}
            ),
            "ListModelPackages": service.call(
                "ListModelPackages", {"ModelPackageGroupName": pipeline.deployed.model_package_group}
            ),
        }
        return {
            "responses": json.loads(json.dumps(responses, default=str)),
            "result": result,
            "packages": packages,
            "package": package,
            "metrics": json.loads(metrics),
            "artifact_url": artifact_url,
            "artifact": _read(pipeline, artifact_url) if artifact_url else b"",
            "notifications": pipeline.notifications(),
            "requests": list(pipeline.sagemaker_service.requests),
            # The stand-in's own record of every training job: the oracle for "the best job".
            "jobs": {
                j.name: (j.objective, j.model_uri) for j in service.training_jobs.values() if j.status == "Completed"
            },
        }


def test_the_run_succeeds(finished_run) -> None:
    assert finished_run["result"]["status"] == "SUCCEEDED", finished_run["result"].get("cause")


def test_one_model_version_is_registered_pending_approval(finished_run) -> None:
    (summary,) = finished_run["packages"]
    assert summary["ModelApprovalStatus"] == "PendingManualApproval"
    assert summary["ModelPackageVersion"] == 1


def test_metrics_document_holds_an_accuracy_well_above_chance(finished_run) -> None:
    package, document = finished_run["package"], finished_run["metrics"]
    assert document["validation_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert document["multiclass_classification_metrics"]["accuracy"]["value"] == document["validation_accuracy"]
    assert float(package["CustomerMetadataProperties"]["validation_accuracy"]) == pytest.approx(
        document["validation_accuracy"], abs=1e-6
    )


def test_the_registered_version_is_the_best_training_job_and_its_artifact(finished_run) -> None:
    jobs, meta = finished_run["jobs"], finished_run["package"]["CustomerMetadataProperties"]
    assert len(jobs) == TINY["max_training_jobs"]  # several jobs: "the best" is a choice
    best = max(objective for objective, _ in jobs.values())
    objective, model_uri = jobs[meta["training_job"]]
    assert objective == best
    assert finished_run["artifact_url"] == model_uri
    assert float(meta["validation_accuracy"]) == pytest.approx(best, abs=1e-6)


def test_hyperparameters_belong_to_the_space_of_their_optimizer(finished_run) -> None:
    meta = finished_run["package"]["CustomerMetadataProperties"]
    optimizer = meta["optimizer"]
    tuned = {k.removeprefix("hp_"): float(v) for k, v in meta.items() if k.startswith("hp_")}
    assert set(tuned) == READ_BY_ALL | OPTIMIZER_READS[optimizer]
    for name, value in tuned.items():
        r = TINY["ranges"][name]
        assert r["min"] <= value <= r["max"], (name, value)
        assert seed_table().ranges[name].min_value <= value <= seed_table().ranges[name].max_value


def test_the_artifact_exists_and_holds_the_model(finished_run) -> None:
    assert finished_run["artifact_url"].endswith("/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(finished_run["artifact"])) as tar:
        assert {"model.pt", "model-shapes.json"} <= set(tar.getnames())


def test_the_success_notification_was_published(finished_run) -> None:
    (note,) = finished_run["notifications"]
    assert note["subject"].startswith("Tuning succeeded: digits")
    assert finished_run["package"]["ModelPackageArn"] in note["message"]
    assert "Best validation accuracy" in note["message"]
    assert "Training billed:" in note["message"] and "worst case allowed: $" in note["message"]


def test_billable_time_and_cost_reach_the_registry(finished_run) -> None:
    meta = finished_run["package"]["CustomerMetadataProperties"]
    assert int(meta["run_billable_seconds"]) >= 4  # four jobs, at least a second each
    assert float(meta["run_estimated_cost_usd"]) >= 0


def test_the_tuning_request_that_reached_sagemaker_used_the_manifest_budget(finished_run) -> None:
    creates = [p for op, p in finished_run["requests"] if op == "CreateHyperParameterTuningJob"]
    (request,) = creates
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 4
    assert {d["DefinitionName"] for d in request["TrainingJobDefinitions"]} == {"sgd", "adam", "rmsprop", "nag"}


@pytest.mark.standin
@pytest.mark.parametrize(
    "operation",
    [
        "DescribeHyperParameterTuningJob",
        "ListTrainingJobsForHyperParameterTuningJob",
        "DescribeTrainingJob",
        "DescribeModelPackage",
        "ListModelPackages",
    ],
)
def test_local_sagemaker_answers_in_the_api_response_shapes(finished_run, operation: str) -> None:
    response = finished_run["responses"][operation]
    assert response
    assert response_errors("sagemaker", operation, response) == []


@pytest.mark.standin
def test_the_shape_check_can_fail() -> None:
    errors = response_errors("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "x", "TrainingJobStatus": "Done"})
    assert any("not in enum" in e for e in errors)
    assert any("required member missing" in e for e in errors)


def test_a_broken_dataset_fails_fast_with_the_file_and_line_and_starts_nothing(local_app, prepared, tmp_path) -> None:
    outdir, prefix = local_app
    broken = tmp_path / "broken"
    shutil.copytree(prepared.root, broken)
    lst = broken / "train_lst" / "train.lst"
    lines = lst.read_text().splitlines()
    lines[2] = lines[2].replace("\t", " ", 1)
    lst.write_text("\n".join(lines) + "\n")
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as pipeline:
        put = upload(broken, pipeline.client("s3"), pipeline.deployed.datasets_bucket, "broken", progress=False)
        execution = pipeline.deliver(pipeline.object_created_event("datasets/broken/manifest.json", put))
        result = pipeline.wait(execution, timeout=120)
        (note,) = pipeline.notifications()
        assert result["status"] == "FAILED"
        assert "train.lst, line 3: expected 3 tab-separated columns" in note["message"]
        assert "What to do:" in note["message"]
        assert note["subject"] == "Tuning failed: broken (DatasetError)"
        assert not [op for op, _ in pipeline.sagemaker_service.requests if op == "CreateHyperParameterTuningJob"]
        # The data is untouched.
        key = "datasets/broken/train_lst/train.lst"
        assert (
            pipeline.client("s3").get_object(Bucket=pipeline.deployed.datasets_bucket, Key=key)["Body"].read()
            == lst.read_bytes()
        )


def test_a_demo_dataset_with_a_leaked_test_image_is_refused_in_the_demos_own_words(
    local_app, sample_images, tmp_path
) -> None:
    outdir, prefix = local_app
    leaky = prepare(sample_images, tmp_path / "leaky", tuning=TINY, progress=False, test_fraction=0.15)
    train_line = (leaky.root / "train_lst" / "train.lst").read_text().splitlines()[6]  # line 7
    test_line = (leaky.root / "test_lst" / "test.lst").read_text().splitlines()[2]  # line 3
    train_image = leaky.root / "train" / train_line.split("\t")[2]
    test_image = leaky.root / "test" / test_line.split("\t")[2]
    shutil.copyfile(train_image, test_image)  # a "test" image copied from train/, under its own name
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as pipeline:
        put = upload(leaky.root, pipeline.client("s3"), pipeline.deployed.datasets_bucket, "leaky", progress=False)
        execution = pipeline.deliver(pipeline.object_created_event("datasets/leaky/manifest.json", put))
        result = pipeline.wait(execution, timeout=120)
        (note,) = pipeline.notifications()
    uri = f"s3://{pipeline.deployed.datasets_bucket}/datasets/leaky/"
    assert result["status"] == "FAILED" and note["subject"] == "Tuning failed: leaky (DatasetError)"
    assert f"{uri}train_lst/train.lst, line 7 names {uri}train/{train_line.split(chr(9))[2]}" in note["message"]
    assert f"({uri}test_lst/test.lst, line 3)" in note["message"]
    assert "1 image is a copy of another split's" in note["message"]
    assert not [op for op, _ in pipeline.sagemaker_service.requests if op == "CreateHyperParameterTuningJob"]


@pytest.mark.parametrize(
    ("tuning", "error", "says"),
    [
        # local deployment: 8 jobs x 600 s x $0.736/h = $0.98 worst case, above a $0.50 cap.
        ({"max_cost_usd": 0.5}, "BudgetExceeded", "above max_cost_usd $0.50"),
        # an uploader may not lift the deployment's cap ($100), nor price the GPU themselves.
        ({"max_cost_usd": 1000}, "DatasetError", "key 'max_cost_usd' (1000.0) is above the deployment's 100.0"),
        ({"price_per_hour_usd": 0.001}, "DatasetError", "key 'price_per_hour_usd' is owned by the deployment"),
    ],
)
def test_a_run_over_budget_or_over_its_rights_is_refused_before_any_job(
    local_app, prepared, tmp_path, tuning, error, says
) -> None:
    outdir, prefix = local_app
    expensive = tmp_path / "expensive"
    shutil.copytree(prepared.root, expensive)
    manifest = json.loads((expensive / "manifest.json").read_text())
    manifest["tuning"] = tuning
    (expensive / "manifest.json").write_text(json.dumps(manifest))
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as pipeline:
        put = upload(expensive, pipeline.client("s3"), pipeline.deployed.datasets_bucket, "expensive", progress=False)
        execution = pipeline.deliver(pipeline.object_created_event("datasets/expensive/manifest.json", put))
        result = pipeline.wait(execution, timeout=120)
        (note,) = pipeline.notifications()
        assert result["status"] == "FAILED"
        assert note["subject"] == f"Tuning failed: expensive ({error})"
        assert says in note["message"]
        assert not [op for op, _ in pipeline.sagemaker_service.requests if op == "CreateHyperParameterTuningJob"]


def test_images_do_not_start_runs(local_app, tmp_path) -> None:
    outdir, prefix = local_app
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as pipeline:
        for key in ("datasets/x/train/0/1.png", "datasets/x/train_lst/train.lst", "other/manifest.json"):
            _, execution = pipeline.put_and_deliver(key, b"data")
            assert execution is None, key
        _, execution = pipeline.put_and_deliver("datasets/x/manifest.json", b"{}")
        assert execution is not None


@pytest.mark.e2e
def test_the_demo_shows_its_progress_and_results_and_no_function_logs(capsys) -> None:
    """The README's main command, smaller: progress lines, the fetch's progress bars, the
    leaderboard, the registered version and the report; the functions' JSON logs go to their
    log file, not to the reader."""
    from local.run import main

    assert main(["--jobs", "2", "--parallel", "2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "the rule matched, execution started" in out
    assert "fetching the images of s3://" in out and "train_lst/train.lst: 100%" in out
    assert "epoch 1: validation accuracy" in out
    for heading in ("Leaderboard (validation accuracy)", "Registered model version", "Notification: ", "Report: "):
        assert heading in out
    assert not [line for line in out.splitlines() if line.startswith('{"level"')]
    # The held-out test split (15% by default): answered by a batch transform of the best model,
    # scored, and reported beside the validation accuracy.
    held_out = int(re.search(r"/ (\d+) test images", out).group(1))
    assert f"test split: {held_out} held-out images answered by the best model" in out
    test_line = re.search(rf"Test accuracy: ([0-9.]+) on {held_out} held-out images \((s3://[^)]+)\)", out)
    assert test_line is not None and 0.0 <= float(test_line.group(1)) <= 1.0
    assert f"  test:       accuracy {test_line.group(1)} on {held_out} held-out images" in out


@pytest.mark.e2e
def test_local_mode_trains_from_an_augmented_manifest(capsys) -> None:
    """The third format end to end: prepared as JSON Lines, uploaded with s3:// source-refs,
    validated, requested in Pipe mode, and trained from by the local SageMaker."""
    from local.run import main

    assert main(["--format", "augmented_manifest", "--jobs", "2", "--parallel", "2", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    # The manifest as validated: the copy under inputs/ that the channel reads.
    assert re.search(
        r"fetching the images of s3://\S+-artifacts-\S+/inputs/digits/digits-\w+/[0-9a-f]{12}/train.manifest: 100%", out
    )
    accuracies = [float(x) for x in re.findall(r"epoch 2: validation accuracy ([0-9.]+)", out)]
    assert len(accuracies) == 2 and max(accuracies) > 0.3  # ten classes: chance is 0.1; two short epochs
    assert "Registered model version" in out
    # Its test split is test.manifest: evaluated the same way.
    assert re.search(r"test split: \d+ held-out images answered by the best model", out)


def test_a_new_version_of_a_dataset_warm_starts_from_its_previous_run_and_both_notices_say_so(
    local_app, sample_images: Path, tmp_path: Path
) -> None:
    """Automatic warm start, end to end: the first run starts cold (no history), RegisterModel
    records it, and the next upload of the dataset starts from it (tuning/history.py)."""
    outdir, prefix = local_app
    tiny = {**TINY, "max_training_jobs": 2, "epochs": 1, "layout": "flat", "warm_start": "auto"}
    prepared = prepare(sample_images, tmp_path / "digits", tuning=tiny, progress=False)
    with LocalPipeline(outdir, prefix, lambda_log=tmp_path / "lambda.jsonl") as pipeline:
        for _ in range(2):  # the same folder uploaded twice: a new manifest version each time
            put = upload(
                prepared.root, pipeline.client("s3"), pipeline.deployed.datasets_bucket, "digits", progress=False
            )
            execution = pipeline.deliver(pipeline.object_created_event("datasets/digits/manifest.json", put))
            assert execution is not None
            assert pipeline.wait(execution, timeout=900)["status"] == "SUCCEEDED"
        created = [p for op, p in pipeline.sagemaker_service.requests if op == "CreateHyperParameterTuningJob"]
        first, second = created
        assert "WarmStartConfig" not in first
        assert second["WarmStartConfig"] == {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": first["HyperParameterTuningJobName"]}],
            "WarmStartType": "TransferLearning",
        }
        cold, warm = (n["message"] for n in pipeline.notifications())
    assert (
        "Warm start: none, a cold start (no earlier run of this dataset or a similar one that SageMaker would take)\n"
        in cold
    )
    assert (
        f"Warm start: 1 parent(s) taken (auto):\n- {second['HyperParameterTuningJobName']} from "
        f"{first['HyperParameterTuningJobName']}: the previous run of this dataset" in warm
    )
