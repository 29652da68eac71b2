"""The benchmark's seed bootstrap, against cases worked by hand."""

from __future__ import annotations

import math

from bench.analyze import bootstrap, ratio


def test_the_ratio_is_the_median_over_the_median_and_claims_no_gain_when_the_arm_never_gets_there() -> None:
    assert ratio([10, 30, 50], [40, 60, 80]) == 0.5  # medians 30 and 60
    assert ratio([10, math.inf, math.inf], [40, 60, 80]) == math.inf
    assert ratio([10, 20, 30], [math.inf, math.inf, 5]) == 0.0
    # The reference's median seed never got there. Its seeds spent 100, 120 and 90 in all; the one
    # that got there did so at 5. Each needed at least min(reach, spent): 100, 120, 5, median 100,
    # so the ratio is at most 20 / 100.
    assert ratio([10, 20, 30], [math.inf, math.inf, 5], totals=[100, 120, 90]) == 0.2
    # Seeds that got there cheaply pull the bound down. Reach (inf, 5, 6, inf) has median inf; the
    # seeds needed at least (100, 5, 6, 100), median 53. The median of the totals (100) would claim
    # at most 20 / 100, a bound that is too strong.
    assert ratio([10, 20, 30], [math.inf, 5, 6, math.inf], totals=[100] * 4) == 20 / 53
    assert ratio([10, 20, 30], [40, 60, 80], totals=[100, 100, 100]) == 20 / 60  # no bound needed


def test_identical_seeds_give_an_interval_of_one_point() -> None:
    assert bootstrap([50.0] * 5, [100.0] * 5, draws=500) == (0.5, 0.5, 1.0)


def test_the_share_below_one_follows_the_resampling_of_each_arm() -> None:
    # Two seeds, one never reaches the target: a resample's median is finite only when both
    # draws are the finite seed, probability 1/4 (worked by hand); the reference is fixed at 100.
    low, high, below = bootstrap([50.0, math.inf], [100.0, 100.0], draws=20_000)
    assert abs(below - 0.25) < 0.015
    assert (low, high) == (0.5, math.inf)


# ----------------------------------------------------------------- GPU time (bench/cost.py, bench/gpu.py)


def job(epochs: int, batch: int, accuracy: float, pruned: bool = False) -> dict[str, object]:
    return {"epochs": epochs, "mini_batch_size": batch, "accuracy": accuracy, "pruned": pruned, "hyperparameters": {}}


def test_a_job_is_billed_its_start_up_plus_its_steps_at_the_measured_cost_of_its_batch() -> None:
    from bench.cost import CostModel

    # 0.01 s per step at 32, 0.04 s at 128: an epoch of 640 images at 32 is 20 steps, 0.2 s measured,
    # which the unit makes 60 s (EPOCH_AT_32); so a measured second is 300 modelled seconds.
    model = CostModel({32: 0.01, 128: 0.04}, training_images=640, start_up=60.0)
    assert model.job_seconds(epochs=2, batch=32) == 60 + 2 * 20 * 0.01 * 300  # 180
    assert model.job_seconds(epochs=1, batch=128) == 60 + 5 * 0.04 * 300  # 5 steps: 120
    # 64 is halfway between 32 and 128 on a log scale: the geometric mean of 0.01 and 0.04, 0.02 s
    assert abs(model.job_seconds(epochs=1, batch=64) - (60 + 10 * 0.02 * 300)) < 1e-9
    assert model.job_seconds(epochs=0, batch=512) == 60  # refused before its first step: start-up only
    assert model.with_start_up(0).job_seconds(epochs=2, batch=32) == 120


def test_two_slots_start_each_job_in_the_first_that_frees() -> None:
    from bench.gpu import schedule

    assert schedule([10, 4, 3, 5], parallel=2) == [(0, 10), (0, 4), (4, 7), (7, 12)]
    assert schedule([10, 4, 3], parallel=1) == [(0, 10), (10, 14), (14, 17)]


def test_the_cost_to_a_target_counts_the_share_a_running_job_has_used() -> None:
    from bench.gpu import cost_to_reach

    trials = [job(1, 32, 0.5), job(1, 32, 0.9), job(1, 32, 0.95)]
    durations = {0: 10.0, 1: 4.0, 2: 2.0}
    by_id = {id(t): durations[i] for i, t in enumerate(trials)}
    duration = lambda t: by_id[id(t)]  # noqa: E731
    # two slots: (0, 10), (0, 4), (4, 6). 0.9 is reached at 4: job 0 has run 4 of its 10 s
    assert cost_to_reach(trials, 0.9, 2, duration, duration) == 4 + 4
    # 0.95 at 6: job 0 6 s, job 1 4 s, job 2 2 s
    assert cost_to_reach(trials, 0.95, 2, duration, duration) == 12
    # one slot: 0.9 is reached at 14, after all of job 0 and job 1
    assert cost_to_reach(trials, 0.9, 1, duration, duration) == 14
    # in epochs: one epoch each, job 0 four tenths done at 4
    assert cost_to_reach(trials, 0.9, 2, duration, lambda t: 1.0) == 1.4
    assert cost_to_reach(trials, 0.99, 2, duration, duration) == math.inf
    # a pruned job's accuracy is not a result SageMaker would report
    stopped = [job(1, 32, 0.99, pruned=True), *trials]
    assert cost_to_reach(stopped, 0.99, 1, lambda t: 1.0, lambda t: 1.0) == math.inf


def test_an_equal_budget_stops_launching_once_the_budget_is_spent() -> None:
    from bench.cost import CostModel
    from bench.gpu import within_budget

    model = CostModel({32: 0.01}, training_images=640, start_up=60.0)  # 1 epoch at 32: 60 + 60 = 120 s
    run = {"trials": [job(1, 32, 0.1 * i) for i in range(5)]}
    assert len(within_budget(run, 240, model)["trials"]) == 2  # 120 + 120 = 240: the third never starts
    assert len(within_budget(run, 241, model)["trials"]) == 3
