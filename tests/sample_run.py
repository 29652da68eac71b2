"""A run, its best job and its registration, as the contract, notice and registry tests share them."""

from __future__ import annotations

from typing import Any

from pipeline.contract import (
    BestJob,
    Cost,
    DatasetRef,
    Registered,
    Run,
    Schedule,
)
from pipeline.settings.tuning_settings import TuningSettings
from tests.sample_request import facts

RUN = Run(
    run_id="digits-0123456789",
    dataset=DatasetRef(bucket="ds", name="digits", manifest_key="datasets/digits/manifest.json", version_id="v7"),
    data=facts("image", 10, 1437, {"train": "s3://ds/datasets/digits/train/"}, "application/x-image"),
    settings=TuningSettings(layout="definitions", strategy="Bayesian"),
    schedule=Schedule(poll_seconds=60, max_tuning_seconds=36000),
    cost=Cost(
        worst_case_usd=29.44,
        price_per_hour_usd=0.736,
        instance_hours=40.0,
        basis="us-east-1 list price of 2026-11-28",
        budget_usd=50.0,
    ),
)


BEST_WIRE: dict[str, Any] = {
    "tuning_job_name": "digits-0123456789",
    "training_job_name": "digits-0123456789-004-abcdef12",
    "accuracy": 0.97314,
    "hyperparameters": {"mini_batch_size": "64", "learning_rate": "0.0123"},
    "definition_name": "sgd",
    "optimizer": "sgd",
    "model_data_url": "s3://art/tuning/digits/r/digits-0123456789-004-abcdef12/output/model.tar.gz",
    "training_image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1",
    "billable_seconds": 300,
    "run_billable_seconds": 5400,
    "run_estimated_cost_usd": 1.1,
    "run_billed_jobs": 20,
    "run_training_jobs": 20,
}


BEST = BestJob.from_dict(BEST_WIRE)


REGISTERED = Registered(
    model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3",
    approval_status="PendingManualApproval",
    metrics_uri="s3://art/metrics/digits/digits-0123456789/metrics.json",
)
