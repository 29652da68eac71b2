"""The local SageMaker's own promises: a run fetches each channel once, concurrently, and jobs
training side by side are as reproducible as jobs training one after another."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch

from local.sagemaker import trainer
from local.sagemaker.service import LocalSageMaker
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
