"""The results report: self-contained HTML with the leaderboard and the plots."""

from __future__ import annotations

from local.report import render

OUTPUT = {
    "run": {
        "run_id": "digits-0123456789",
        "dataset": {"uri": "s3://b/datasets/digits/", "version_id": "v1"},
        "settings": {"layout": "definitions", "strategy": "Bayesian"},
        "cost": {"worst_case_usd": 5.89, "basis": "us-east-1 list price"},
    },
    "best": {
        "accuracy": 0.95,
        "training_job_name": "t-002",
        "optimizer": "adam",
        "run_billable_seconds": 40,
        "run_estimated_cost_usd": 0.01,
    },
    "registered": {
        "model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/1",
        "approval_status": "PendingManualApproval",
    },
}
ROWS = [
    {
        "job": "t-001",
        "definition": "sgd",
        "status": "Completed",
        "accuracy": 0.5,
        "hyperparameters": {"learning_rate": "0.1", "momentum": "0.9"},
    },
    {
        "job": "t-002",
        "definition": "adam",
        "status": "Completed",
        "accuracy": 0.95,
        "hyperparameters": {"learning_rate": "0.001", "beta_1": "0.9"},
    },
    {
        "job": "t-003",
        "definition": "sgd",
        "status": "Failed",
        "accuracy": None,
        "hyperparameters": {"learning_rate": "0.4", "momentum": "0.1"},
    },
]


def test_report_is_self_contained_with_leaderboard_and_plots() -> None:
    html = render(OUTPUT, ROWS)
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    # Plots: accuracy per job with best-so-far, and accuracy against each tuned hyperparameter.
    assert html.count("<svg") == 1 + 3  # beta_1, learning_rate, momentum
    assert "best so far" in html and "<polyline" in html
    # Leaderboard best first, failed last.
    assert html.index("t-002</td>") < html.index("t-001</td>") < html.index("t-003</td>")
    assert "worst case allowed $5.89" in html
