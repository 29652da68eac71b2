"""What a training job would be billed, as a model: GPU seconds from the steps it trains.

    python -m bench.cost [--out bench/results/step-cost.json]   # measure the stand-in's step cost

A SageMaker training job is billed from its TrainingStartTime to its TrainingEndTime, and
"the difference [from the start in the logs] is due to the time it takes to download the
training data and to the size of the training container" (API reference, DescribeTrainingJob,
TrainingStartTime): the download and the container's start are billed, once per job. So a job
costs a fixed start-up plus its training steps:

    seconds = START_UP + epochs trained x floor(training images / mini_batch_size) x step(mini_batch_size)

(the algorithm drops the last incomplete batch). `step(b)` is measured on this machine's stand-in
(the local trainer's network, one CPU thread), at batch sizes 8 to 512, and read between the
measured sizes on a log-log line. Its unit is then rescaled so that an epoch at batch size 32
(the algorithm's default) costs EPOCH_AT_32 seconds: what matters is the shape of the curve
(a small batch costs more per image than a large one, on a GPU as here), not this machine's
speed. This is a model, not a measurement of a GPU: the absolute seconds are assumptions; the
ratios between configurations, measured side by side with one model, are the claim.

START_UP and EPOCH_AT_32 are assumptions, stated as such: 60 s of billed start-up (a data
download and the algorithm's container, per job) for an epoch of 60 s. `bench.analyze` also
reports every headline at 0 and 180 s of start-up, so a reader can see how much rests on it.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEASURED = Path(__file__).resolve().parent / "results" / "step-cost.json"
BATCHES = (8, 16, 32, 64, 128, 256, 512)
START_UP = 60.0  # seconds billed per job before its first step (assumption, see above)
EPOCH_AT_32 = 60.0  # seconds of one epoch at mini_batch_size 32 (assumption: sets the unit)
START_UPS = (0.0, START_UP, 180.0)  # the sensitivity bench.analyze reports


@dataclass(frozen=True)
class CostModel:
    """Seconds per training step by batch size (measured), and the job's fixed start-up."""

    step_seconds: dict[int, float]
    training_images: int
    start_up: float = START_UP

    def step(self, batch: int) -> float:
        """Seconds per step at `batch`: log-log between the two nearest measured sizes."""
        sizes = sorted(self.step_seconds)
        if batch <= sizes[0]:
            return self.step_seconds[sizes[0]] * batch / sizes[0]
        if batch >= sizes[-1]:
            return self.step_seconds[sizes[-1]] * batch / sizes[-1]
        i = bisect.bisect_left(sizes, batch)
        lo, hi = sizes[i - 1], sizes[i]
        if batch == hi:
            return self.step_seconds[hi]
        w = (math.log(batch) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return math.exp((1 - w) * math.log(self.step_seconds[lo]) + w * math.log(self.step_seconds[hi]))

    def unit(self) -> float:
        """Modelled seconds per measured second: an epoch at batch 32 costs EPOCH_AT_32."""
        return EPOCH_AT_32 / ((self.training_images // 32) * self.step(32))

    def job_seconds(self, epochs: int, batch: int) -> float:
        """What SageMaker would bill a job that trained `epochs` epochs at `batch`."""
        if epochs == 0:  # refused before training (e.g. a batch larger than the training set)
            return self.start_up
        return self.start_up + epochs * (self.training_images // batch) * self.step(batch) * self.unit()

    def with_start_up(self, start_up: float) -> CostModel:
        return CostModel(self.step_seconds, self.training_images, start_up)


def load(training_images: int, path: Path = MEASURED) -> CostModel:
    data = json.loads(path.read_text())
    return CostModel({int(k): float(v) for k, v in data["step_seconds"].items()}, training_images)


def measure(repeats: int = 30) -> dict[str, Any]:
    """Median seconds per training step of the local trainer's network, one thread, per batch size."""
    import statistics

    import torch

    import local  # noqa: F401  (puts lambdas/ on the path)
    from local.sagemaker import trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = trainer.small_resnet(1, 6)
    hp = trainer.Hyperparameters.parse({"num_classes": "6", "num_training_samples": "512", "optimizer": "sgd"})
    optimizer = trainer.make_optimizer(model.parameters(), hp)
    loss_fn = torch.nn.CrossEntropyLoss()
    out: dict[int, float] = {}
    for batch in BATCHES:
        x, y = torch.rand(batch, 1, 16, 16), torch.randint(0, 6, (batch,))
        times = []
        for i in range(repeats + 3):
            started = time.perf_counter()
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
            if i >= 3:  # the first steps warm up the allocator
                times.append(time.perf_counter() - started)
        out[batch] = statistics.median(times)
    return {
        "what": "median seconds per training step, local trainer (small ResNet, 1x16x16 images, 6 classes), "
        "1 CPU thread, sgd; python -m bench.cost",
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
        "threads": 1,
        "step_seconds": out,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--out", type=Path, default=MEASURED)
    args = parser.parse_args(argv)
    result = measure()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for batch, seconds in result["step_seconds"].items():
        print(f"batch {batch:>3}: {seconds * 1000:7.2f} ms per step, {seconds / batch * 1e6:7.1f} us per image")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
