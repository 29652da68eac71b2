"""What a manifest will do, before it is uploaded: touches nothing, reads only the local folder.

    python -m tools.plan prepared/manifest.json [--env dev] [--name flowers] [--region REGION] [--json]

The month's budget and the slots are checked as Admit checks them, with the amounts given
(`--billed`, `--reserved`: what `make runs` shows) and the quota given (`--quota`).

The manifest's folder is read as the dataset would be read in S3 (`train/`, `train_lst/`, ...):
validation runs on it, the very code of the ValidateDataset function, with the deployment's
settings from cdk.json and the deployed workflow's timeout. The plan prints the exact
CreateHyperParameterTuningJob request(s) the run would send,
the worst-case cost and duration, or, when the manifest would be refused, the refusal in the
workflow's own words. Exit status 0: the run would start; 1: it would be refused.

Placeholders: the account (123456789012 unless --account), the execution's ARN, the training
role (the pipeline stack's SageMakerRoleArn output), the data key's id, and the run id (it is
derived from the manifest's S3 version id, unknown before the upload; here "plan"). Warm
start's parents are found at run time, from the platform's history in the artifacts bucket (the
dataset's previous run, or similar datasets' runs: pipeline/tuning/history.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipeline.aws import s3_layout
from pipeline.aws.errors import AdmissionRefused, BudgetExceeded, DatasetError, MonthlyBudgetExceeded
from pipeline.aws.image_uri import training_image_uri
from pipeline.aws.tags import tags
from pipeline.contract import Run
from pipeline.dataset.validation import validate_dataset
from pipeline.governance.admission import refuse_if_too_large
from pipeline.governance.ledger import Month, refusal, usd
from pipeline.governance.slots import TRAINING, Ticket
from pipeline.tuning.request import Destinations, build_tuning_requests
from tools.dataset import with_dataset_uris

ROOT = Path(__file__).resolve().parents[1]
PAGE = 1000  # ListObjectsV2's page size


class _Body:
    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self) -> bytes:
        return self._stream.read()

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while chunk := self._stream.read(size):
            yield chunk


class FolderS3:
    """The S3 reads validation makes (GetObject, ListObjectsV2), answered from a local folder
    as if it had been uploaded to s3://<bucket>/datasets/<name>/."""

    def __init__(self, folder: Path, bucket: str, name: str) -> None:
        self.bucket, self.prefix = bucket, s3_layout.dataset_prefix(name)
        self.files = {
            self.prefix + p.relative_to(folder).as_posix(): p
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        }
        self.keys = sorted(self.files)

    def get_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> dict[str, Any]:  # noqa: N803
        if Bucket != self.bucket or Key not in self.files:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        body = self.files[Key].read_bytes()
        if Key.endswith(".manifest") and Key.count("/") == self.prefix.count("/"):
            body = with_dataset_uris(body, f"s3://{self.bucket}/{self.prefix}")  # as `upload` would
        return {"Body": _Body(body)}

    def _etag(self, key: str) -> str:
        """The ETag a single-part upload to an SSE-S3 or unencrypted bucket gets: the MD5 of the
        content. So the plan finds copies across splits by content even where the deployed
        bucket's SSE-KMS ETags cannot (leakage.py)."""
        return '"' + hashlib.md5(self.files[key].read_bytes(), usedforsecurity=False).hexdigest() + '"'

    def get_paginator(self, operation: str) -> FolderS3:
        assert operation == "list_objects_v2", operation
        return self

    def paginate(
        self,
        Bucket: str,
        Prefix: str,
        Delimiter: str | None = None,
        StartAfter: str = "",  # noqa: N803
        PaginationConfig: dict[str, int] | None = None,  # noqa: N803
    ) -> Iterator[dict[str, Any]]:
        keys = [k for k in self.keys if k.startswith(Prefix) and k > StartAfter] if Bucket == self.bucket else []
        folders: list[str] = []
        if Delimiter:
            folders = sorted(
                {
                    Prefix + k[len(Prefix) :].split(Delimiter)[0] + Delimiter
                    for k in keys
                    if Delimiter in k[len(Prefix) :]
                }
            )
            keys = [k for k in keys if Delimiter not in k[len(Prefix) :]]
        limit = (PaginationConfig or {}).get("MaxItems")
        if limit is not None:  # enough for the boundaries' sake: a few keys or folders may be left out
            keys, folders = keys[:limit], folders[:limit]
        for start in range(0, max(len(keys), 1), PAGE):
            page = keys[start : start + PAGE]
            yield {
                "Contents": [{"Key": k, "Size": self.files[k].stat().st_size, "ETag": self._etag(k)} for k in page],
                "CommonPrefixes": [{"Prefix": f} for f in folders] if start == 0 else [],
            }


def admission(run: Run, config: Any, month: Month, quota: int | None) -> dict[str, Any] | None:
    """The refusal Admit would give, in its words, for this month's figures and this quota; or None."""
    budget = config.governance.monthly_budget_usd
    month = Month(month.month, None if budget is None else Decimal(str(budget)), month.billed, month.reserved)
    worst = usd(run.cost.worst_case_usd)
    if month.remaining is not None and worst > month.remaining:
        return {"accepted": False, "error": MonthlyBudgetExceeded.__name__, "message": refusal(month, worst)}
    capacity, kind = config.governance.capacity, run.settings.instance_type
    limit, note = capacity.get(kind, 0), "The account's quota is read when the run starts (plan with --quota N)."
    if quota is not None and quota < limit:
        limit, note = quota, f"The capacity for {kind}, {capacity[kind]}, is above the quota you gave, {quota}."
    try:
        if kind not in capacity:
            raise AdmissionRefused(
                f"instance type {kind} has no capacity in this deployment: add it to 'capacity' in cdk.json."
            )
        refuse_if_too_large(Ticket(kind, run.settings.max_parallel_jobs, "plan", TRAINING, ""), limit, note)
    except AdmissionRefused as exc:
        return {"accepted": False, "error": AdmissionRefused.__name__, "message": str(exc)}
    return None


def plan(
    manifest: Path,
    env: str,
    name: str | None,
    region: str | None,
    account: str,
    month: Month | None = None,
    quota: int | None = None,
) -> dict[str, Any]:
    """The run the manifest would start: its requests, cost and schedule; or the refusal. `month`:
    the month's billed and reserved amounts (`make runs` shows them; default none); `quota`: the
    account's applied quota for the instance type, if known."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.config import load_config

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    config = load_config(context, env)
    # As `cdk deploy` would: the environment's region, else the one the AWS CLI and SDK are set to.
    region = region or config.region or boto3.session.Session().region_name or "us-east-1"
    name = name or manifest.resolve().parent.name
    bucket = f"{config.prefix}-{config.env_name}-datasets-{account}-{region}"
    event = {
        "detail": {"bucket": {"name": bucket}, "object": {"key": s3_layout.manifest_key(name), "version-id": "plan"}}
    }
    s3 = FolderS3(manifest.resolve().parent, bucket, name)
    try:
        run = validate_dataset(
            event,
            config.tuning.to_dict(),
            s3,
            region,
            workflow_timeout_seconds=config.workflow_timeout_seconds,
            queue_seconds=config.governance.max_queue_wait_seconds,
        )
    except (DatasetError, BudgetExceeded) as exc:
        return {"accepted": False, "error": type(exc).__name__, "message": str(exc)}
    refused = admission(run, config, month or Month("this month", None, Decimal(0), Decimal(0)), quota)
    if refused is not None:
        return refused
    return {"accepted": True, **_requests_and_bounds(run, config, account, region)}


def _requests_and_bounds(run: Run, config: Any, account: str, region: str) -> dict[str, Any]:
    artifacts = f"{config.prefix}-{config.env_name}-artifacts-{account}-{region}"
    dest = Destinations(
        role_arn=f"arn:aws:iam::{account}:role/SageMakerRoleArn-output-of-{config.prefix}-{config.env_name}-pipeline",
        image_uri=training_image_uri(region),
        output_uri=s3_layout.tuning_output_uri(artifacts, run.dataset.name, run.run_id),
        checkpoint_uri=s3_layout.checkpoint_uri(artifacts, run.dataset.name, run.run_id),
        # StartTuning names the storage stack's data key; its id is known only once deployed.
        kms_key_arn=f"arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000000",
        vpc_config=config.training_vpc,
    )
    execution = f"arn:aws:states:{region}:{account}:execution:{config.state_machine_name}:execution-name-at-run-time"
    requests = build_tuning_requests(
        run.run_id, run.settings, run.data, dest, tags=tags(run.dataset.name, run.run_id, execution)
    )
    return {
        "run": run.to_dict(),
        "requests": requests,
        "worst_case_usd": run.cost.worst_case_usd,
        "cost_basis": run.cost.basis,
        "budget_usd": run.cost.budget_usd,
        "max_tuning_seconds": run.schedule.max_tuning_seconds,
        "workflow_timeout_seconds": config.workflow_timeout_seconds,
        "poll_seconds": run.schedule.poll_seconds,
    }


def _text(result: dict[str, Any], manifest: Path) -> str:
    if not result["accepted"]:
        return f"REFUSED ({result['error']}): {result['message']}\n\nNothing would start. Fix it, then plan again.\n"
    run, hours = result["run"], result["max_tuning_seconds"] / 3600
    budget = "no cap" if result["budget_usd"] is None else f"cap ${result['budget_usd']:,.2f}"
    lines = [
        f"ACCEPTED: {manifest} would start run {run['run_id']}.",
        f"Data: {run['data']['num_training_samples']} training / {run['data']['num_validation_samples']} "
        f"validation images, {run['data']['num_classes']} classes ({run['data']['format']}).",
        f"Worst case: ${result['worst_case_usd']:,.2f} ({budget}; {result['cost_basis']}); tuning up to "
        f"{result['max_tuning_seconds']:,} s ({hours:.1f} h), within the workflow's "
        f"{result['workflow_timeout_seconds']:,} s; polled every {result['poll_seconds']} s.",
        f"{len(result['requests'])} CreateHyperParameterTuningJob request(s):",
        json.dumps(result["requests"], indent=2),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", type=Path, help="the manifest.json, in the folder of the prepared dataset")
    parser.add_argument("--env", default="dev", help="the cdk.json environment whose settings apply")
    parser.add_argument("--name", help="the dataset's name (its S3 prefix); default: the folder's name")
    parser.add_argument(
        "--region",
        help="the deployment's region; default: the environment's `region` in cdk.json, else your AWS configuration's (AWS_REGION, ~/.aws/config), else us-east-1",
    )
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--json", action="store_true", help="the plan as JSON")
    parser.add_argument("--billed", type=Decimal, default=Decimal(0), help="this month's billed USD (make runs)")
    parser.add_argument("--reserved", type=Decimal, default=Decimal(0), help="this month's reserved USD (make runs)")
    parser.add_argument("--quota", type=int, help="the account's applied quota for the instance type")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        sys.stderr.write(f"{args.manifest}: no such file. Give the path of a manifest.json.\n")
        return 2
    month = Month(datetime.now(UTC).strftime("%Y-%m"), None, args.billed, args.reserved)
    result = plan(args.manifest, args.env, args.name, args.region, args.account, month, args.quota)
    sys.stdout.write(json.dumps(result, indent=2) + "\n" if args.json else _text(result, args.manifest))
    return 0 if result["accepted"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
