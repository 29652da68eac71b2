"""The benchmark's seed bootstrap, against cases worked by hand."""

from __future__ import annotations

import math

from bench.analyze import bootstrap, ratio


def test_the_ratio_is_the_median_over_the_median_and_claims_no_gain_when_the_arm_never_gets_there() -> None:
    assert ratio([10, 30, 50], [40, 60, 80]) == 0.5  # medians 30 and 60
    assert ratio([10, math.inf, math.inf], [40, 60, 80]) == math.inf
    assert ratio([10, 20, 30], [math.inf, math.inf, 5]) == 0.0


def test_identical_seeds_give_an_interval_of_one_point() -> None:
    assert bootstrap([50.0] * 5, [100.0] * 5, draws=500) == (0.5, 0.5, 1.0)


def test_the_share_below_one_follows_the_resampling_of_each_arm() -> None:
    # Two seeds, one never reaches the target: a resample's median is finite only when both
    # draws are the finite seed, probability 1/4 (worked by hand); the reference is fixed at 100.
    low, high, below = bootstrap([50.0, math.inf], [100.0, 100.0], draws=20_000)
    assert abs(below - 0.25) < 0.015
    assert (low, high) == (0.5, math.inf)
