"""The results report: self-contained HTML with the leaderboard and the plots."""

from __future__ import annotations

import base64
import dataclasses
import re

from local.report import render
from tests.sample_run import BEST, REGISTERED, RUN

# The execution's output as the state machine leaves it: each step's result in its wire form.
OUTPUT = {"run": RUN.to_dict(), "best": BEST.to_dict(), "registered": dataclasses.asdict(REGISTERED)}
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
    assert "<script" not in html and "http" not in html and "<link" not in html
    # Plots (matplotlib, inline PNG): the leaderboard, accuracy per job with best-so-far, and
    # accuracy against each tuned hyperparameter of the completed jobs.
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert captions == [
        "Leaderboard: validation accuracy per completed training job (colour: optimizer)",
        "Validation accuracy per training job, in launch order; line: best so far",
        "accuracy vs beta_1",
        "accuracy vs learning_rate",
        "accuracy vs momentum",
    ]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5 and all(base64.b64decode(i).startswith(b"\x89PNG\r\n") for i in images)
    # Leaderboard table best first, failed last.
    assert html.index("t-002</td>") < html.index("t-001</td>") < html.index("t-003</td>")
    assert "worst case allowed $29.44" in html and "5400 s, about $1.10" in html


def test_with_a_test_split_the_report_draws_its_confusion_matrix_first() -> None:
    evaluation = {
        "test_accuracy": 0.75,
        "test_samples": 4,
        "per_class_accuracy": [1.0, 0.5],
        "confusion_matrix": [[2, 0], [1, 1]],
    }
    html = render(OUTPUT, ROWS, evaluation)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert captions[0] == "Confusion matrix on the held-out test split: 4 images, accuracy 0.7500"
    assert len(captions) == 6
    assert "test accuracy <b>0.7500</b> on 4 held-out images" in html
    assert "no test split" in render(OUTPUT, ROWS)
