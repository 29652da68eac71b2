"""What a search spent before it first reached a target, in modelled GPU seconds or in epochs.

A run's jobs go `parallel` at a time, in launch order, each starting in the first slot that
frees (what `bench.run` and SageMaker do). A job is billed as it runs, so a job still running
when the target is reached has cost its share so far: the cost to the target at time t is the
sum over jobs of their cost accrued by t, and t is the end of the first completed job whose
final accuracy reaches the target. With one job at a time this is the sum of the jobs up to
and including that one.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from typing import Any

from bench.cost import CostModel

Trial = dict[str, Any]


def batch_of(trial: Trial) -> int:
    """The job's mini_batch_size (older raw files only have it among the tuned hyperparameters)."""
    return int(trial.get("mini_batch_size") or trial["hyperparameters"].get("mini_batch_size", 32))


def schedule(durations: Sequence[float], parallel: int) -> list[tuple[float, float]]:
    """(start, end) of each job, in launch order, `parallel` slots, each job in the first free slot."""
    free = [0.0] * parallel
    out = []
    for d in durations:
        start = heapq.heappop(free)
        out.append((start, start + d))
        heapq.heappush(free, start + d)
    return out


def cost_to_reach(
    trials: Sequence[Trial],
    target: float,
    parallel: int,
    duration: Callable[[Trial], float],
    cost: Callable[[Trial], float],
) -> float:
    """`cost` (per job, accrued evenly over its `duration`) spent until the target is first reached;
    inf if no completed job reaches it."""
    times = schedule([duration(t) for t in trials], parallel)
    reached = [end for t, (_, end) in zip(trials, times, strict=True) if not t["pruned"] and t["accuracy"] >= target]
    if not reached:
        return math.inf
    at = min(reached)
    spent = 0.0
    for t, (start, end) in zip(trials, times, strict=True):
        if start < at:
            share = 1.0 if end <= at else (at - start) / (end - start)
            spent += cost(t) * share
    return spent


def billed(model: CostModel) -> Callable[[Trial], float]:
    """A job's modelled GPU seconds under `model`."""
    return lambda t: model.job_seconds(t["epochs"], batch_of(t))


def gpu_seconds_to_reach(run: dict[str, Any], target: float, model: CostModel) -> float:
    return cost_to_reach(run["trials"], target, run.get("parallel", 1), billed(model), billed(model))


def epochs_spent_to_reach(run: dict[str, Any], target: float, model: CostModel) -> float:
    """Epochs trained until the target is reached, on the same clock (bench.run.epochs_to_reach
    counts them one job after another instead)."""
    return cost_to_reach(run["trials"], target, run.get("parallel", 1), billed(model), lambda t: float(t["epochs"]))


def gpu_seconds_total(run: dict[str, Any], model: CostModel) -> float:
    return sum(map(billed(model), run["trials"]))


def within_budget(run: dict[str, Any], budget: float, model: CostModel) -> dict[str, Any]:
    """The run as if it stopped launching jobs once `budget` GPU seconds were spent (an equal
    budget): the jobs launched before that, in launch order."""
    kept, spent = [], 0.0
    for t in run["trials"]:
        if spent >= budget:
            break
        kept.append(t)
        spent += billed(model)(t)
    return {**run, "trials": kept}
