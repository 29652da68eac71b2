"""`python -m tools.plan`: the run a manifest would start, or the refusal, before any upload."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.api_model import request_errors
from pipeline.aws.errors import DatasetError
from pipeline.dataset.validation import validate_dataset
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import run_id
from tools.dataset import prepare, upload
from tools.plan import main, plan

BUCKET = "ic-tuning-dev-datasets-123456789012-us-east-1"  # tools.plan's name for dev, default account


@pytest.fixture(autouse=True)
def aws_region_us_east_1(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Without --region the plan takes the AWS configuration's region, as `cdk deploy` would: pin it."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.getbasetemp() / "no-aws-config"))


@pytest.fixture(scope="module")
def prepared(sample_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "digits"
    prepare(sample_images, out, tuning={"max_training_jobs": 6, "max_parallel_jobs": 2}, progress=False)
    return out


@pytest.fixture(scope="module")
def small_prepared(small_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 20 digits, prepared: for the tests whose point is not the counts."""
    out = tmp_path_factory.mktemp("small-plan") / "digits"
    prepare(small_images, out, tuning={"max_training_jobs": 6, "max_parallel_jobs": 2}, progress=False)
    return out


def test_an_accepted_manifest_shows_the_exact_requests_cost_and_duration(prepared: Path, capsys) -> None:
    assert main([str(prepared / "manifest.json"), "--env", "dev", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (request,) = result["requests"]
    assert request_errors("sagemaker", "CreateHyperParameterTuningJob", request) == []
    assert request["HyperParameterTuningJobName"] == run_id(BUCKET, "digits", "plan")
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 6
    statics = request["TrainingJobDefinitions"][0]["StaticHyperParameters"]
    assert (statics["num_classes"], statics["num_training_samples"]) == ("10", "1438")
    # dev (cdk.json): ml.g4dn.xlarge at $0.736/h, 6 jobs of at most 3,600 s: $4.42 on demand,
    # 3 waves of 2 jobs of 3,600 s (spot: each may wait 7,200 s) = 21,600 s of tuning.
    assert result["worst_case_usd"] == pytest.approx(6 * 3600 / 3600 * 0.736, abs=0.01)
    assert result["max_tuning_seconds"] == 3 * 7200
    assert result["workflow_timeout_seconds"] == 252_240  # tests/test_limits.py: evaluation and queue waits


def test_a_refused_manifest_gets_the_workflows_own_words_and_exit_1(
    small_prepared: Path, tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "digits"
    shutil.copytree(small_prepared, broken)
    lst = broken / "train_lst" / "train.lst"
    lines = lst.read_text().splitlines()
    lines[6] = lines[6].replace("\t", " ", 1)
    lst.write_text("\n".join(lines) + "\n")
    assert main([str(broken / "manifest.json")]) == 1
    out = capsys.readouterr().out
    refusal = plan(broken / "manifest.json", "dev", None, "us-east-1", "123456789012")["message"]
    assert out.startswith(f"REFUSED (DatasetError): {refusal}")
    assert "train.lst, line 7" in refusal
    with mock_aws():  # the same folder uploaded and validated as the workflow would
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        put = upload(broken, s3, BUCKET, "digits", progress=False)
        event = {
            "detail": {
                "bucket": {"name": BUCKET},
                "object": {"key": "datasets/digits/manifest.json", "version-id": put["VersionId"]},
            }
        }
        dev = json.loads(Path("cdk.json").read_text())["context"]["environments"]["dev"]["tuning"]
        with pytest.raises(DatasetError) as raised:
            validate_dataset(event, TuningSettings.from_mapping(dev, where="t").to_dict(), s3)
    assert str(raised.value) == refusal


def test_a_manifest_over_the_budget_is_refused_as_the_workflow_would(prepared: Path, tmp_path: Path) -> None:
    dear = tmp_path / "digits"
    shutil.copytree(prepared, dear)
    manifest = json.loads((dear / "manifest.json").read_text())
    manifest["tuning"] = {"max_training_jobs": 20, "max_cost_usd": 1}
    (dear / "manifest.json").write_text(json.dumps(manifest))
    result = plan(dear / "manifest.json", "dev", None, "us-east-1", "123456789012")
    assert (result["accepted"], result["error"]) == (False, "BudgetExceeded")
    assert "max_cost_usd" in result["message"]


def test_a_held_out_test_split_is_validated_counted_and_priced(sample_images: Path, tmp_path: Path) -> None:
    folder = tmp_path / "digits"
    prepared_split = prepare(sample_images, folder, test_fraction=0.15, progress=False)
    result = plan(folder / "manifest.json", "dev", None, "us-east-1", "123456789012")
    assert result["accepted"], result
    test = result["run"]["data"]["test"]
    assert test["num_samples"] == prepared_split.test > 0
    assert test["index_uri"].endswith("/datasets/digits/test_lst/test.lst")
    assert "test split's batch transform" in result["cost_basis"]
    lst = folder / "test_lst" / "test.lst"
    _, _, path = lst.read_text().splitlines()[0].split("\t")
    lst.write_text(lst.read_text() + f"99999\t10\t{path}\n")  # a class training never saw
    refused = plan(folder / "manifest.json", "dev", None, "us-east-1", "123456789012")
    assert refused["message"] == (
        f"s3://{BUCKET}/datasets/digits/test_lst/test.lst: the test split has labels up to 10 but training only 9. "
        "A label is the class's number in training (0..9): number this split's images as their classes are "
        "numbered in training (do not renumber it on its own), or add the missing class to training."
    )


def test_the_months_budget_refuses_in_admits_words_and_exactly_the_remaining_amount_is_accepted(
    prepared: Path, capsys
) -> None:
    """dev: monthly_budget_usd 1,000 (cdk.json); this manifest's worst case is $4.42 (6 jobs x 1 h x
    $0.736/h, the test above)."""
    from pipeline.aws.errors import MonthlyBudgetExceeded
    from pipeline.governance.ledger import Ledger, Month

    manifest = str(prepared / "manifest.json")
    # 1,000 - 900.00 billed - 95.59 reserved = 4.41 remain: one cent short.
    assert main([manifest, "--env", "dev", "--billed", "900.00", "--reserved", "95.59"]) == 1
    shown = capsys.readouterr().out
    assert shown.startswith("REFUSED (MonthlyBudgetExceeded)")
    for words in ("$1,000.00 for", "$900.00 billed", "$95.59 reserved", "worst case is $4.42", "only $4.41 would fit"):
        assert words in shown
    assert main([manifest, "--env", "dev", "--billed", "900.00", "--reserved", "95.58"]) == 0  # exactly $4.42 left
    capsys.readouterr()
    # The same words as the workflow's Admit, from the same ledger figures.
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        ledger = Ledger(db, "t", Decimal("1000"))
        ledger.reserve("2026-12", "e0", Decimal("900.00"), {"run_id": "r0"})
        ledger.settle("2026-12", "e0", Decimal("900.00"))
        ledger.reserve("2026-12", "e1", Decimal("95.59"), {"run_id": "r1"})
        with pytest.raises(MonthlyBudgetExceeded) as admitted:
            ledger.reserve("2026-12", "e2", Decimal("4.42"), {"run_id": "r2"})
    planned = plan(
        prepared / "manifest.json",
        "dev",
        None,
        "us-east-1",
        "123456789012",
        Month("2026-12", None, Decimal("900.00"), Decimal("95.59")),
    )
    assert planned["message"] == str(admitted.value)


def test_a_run_wider_than_the_quota_given_is_refused_by_the_plan(prepared: Path, capsys) -> None:
    assert main([str(prepared / "manifest.json"), "--env", "dev", "--quota", "1"]) == 1
    shown = capsys.readouterr().out
    assert "REFUSED (AdmissionRefused)" in shown and "needs 2 ml.g4dn.xlarge instances at once" in shown
    assert "above the quota you gave, 1" in shown


def test_the_plan_names_the_deployments_region_and_state_machine(
    small_prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --region the plan is for the region the environment deploys to (cdk.json `region`),
    # and the execution that tags the jobs is one of the state machine `<prefix>-<env>-tuning`.
    cdk = json.loads((Path(__file__).parents[1] / "cdk.json").read_text())
    cdk["context"]["environments"]["dev"]["region"] = "eu-west-1"
    (tmp_path / "cdk.json").write_text(json.dumps(cdk))
    monkeypatch.setattr("tools.plan.ROOT", tmp_path)
    (request,) = plan(small_prepared / "manifest.json", "dev", None, None, "123456789012")["requests"]
    image = request["TrainingJobDefinitions"][0]["AlgorithmSpecification"]["TrainingImage"]
    assert image.split("/")[0].endswith(".dkr.ecr.eu-west-1.amazonaws.com")
    (execution,) = [t["Value"] for t in request["Tags"] if t["Key"] == "tuning-pipeline:execution"]
    assert execution.startswith("arn:aws:states:eu-west-1:123456789012:execution:ic-tuning-dev-tuning:")


def test_without_a_region_in_cdk_json_the_plan_is_for_the_region_aws_is_configured_for(
    small_prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped environments name no region: `cdk deploy` deploys to the CLI's, and so plans the plan.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    (request,) = plan(small_prepared / "manifest.json", "dev", None, None, "123456789012")["requests"]
    image = request["TrainingJobDefinitions"][0]["AlgorithmSpecification"]["TrainingImage"]
    assert image.split("/")[0].endswith(".dkr.ecr.eu-central-1.amazonaws.com")
