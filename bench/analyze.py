"""Anytime performance and near-chance regions, from the raw trials a benchmark run wrote.

    python -m bench.analyze RAW.json [--out DIR] [--reference NAME]

Reads the raw trials (bench-results/raw.json, or a committed *.raw.json) and writes, for each
dataset in them:

- `<stem>.anytime.png`: the best validation accuracy so far against the training epochs spent,
  per configuration: the median over the seeds, with the band from the worst to the best seed;
- `<stem>.anytime.md`: the headline figures: the epochs each configuration needs to reach the
  reference's median best-at-N (median over seeds, and in how many seeds it gets there), the
  best-at-N of its worst seed, and its share of near-chance jobs (at most 1.5x chance); then each
  configuration's ratio to the reference at 95, 97, 98, 99 and 99.5% of that target, with a
  seed-bootstrap 90% interval and the share of resamples in which the ratio is below 1;
- `<stem>.regions.md`: per optimizer, the share of near-chance jobs in each band of each
  hyperparameter it reads: where a search spends epochs for nothing, the evidence for
  per-optimizer ranges.

Nothing is trained here: the figures are exactly those of the raw trials.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench import gpu  # noqa: E402
from bench.cost import START_UP, START_UPS, CostModel, load  # noqa: E402
from bench.run import BUDGETED, best_after, epochs_to_reach  # noqa: E402

NEAR_CHANCE = 1.5  # a job at most 1.5x chance accuracy learned nothing
SWEEP = (0.95, 0.97, 0.98, 0.99, 0.995)  # shares of the reference's median best@N (issue 21)
DRAWS = 10_000  # bootstrap resamples; on the 10-seed shapes run, five RNG seeds moved an end by at most 0.02
BANDS = {
    "learning_rate": [1e-6, 1e-3, 1e-2, 0.03, 0.1, 0.2, 0.5],
    "weight_decay": [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0],
    "momentum": [0.0, 0.5, 0.9, 1.0],
    "beta_1": [0.0, 0.5, 0.9, 1.0],
    "beta_2": [0.0, 0.5, 0.9, 0.99, 1.0],
    "eps": [0.0, 1e-3, 1e-2, 0.1, 0.5, 1.0],
    "gamma": [0.0, 0.5, 0.9, 1.0],
}
READS = {  # "Image classification hyperparameters" page: what each optimizer reads
    "sgd": ("learning_rate", "momentum", "weight_decay"),
    "nag": ("learning_rate", "momentum", "weight_decay"),
    "adam": ("learning_rate", "beta_1", "beta_2", "eps"),
    "rmsprop": ("learning_rate", "gamma", "eps"),
}


def curve(trials: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """(cumulative epochs, best completed accuracy so far) after each job, in launch order."""
    spent, best, xs, ys = 0, 0.0, [], []
    for t in trials:
        spent += t["epochs"]
        if not t["pruned"]:
            best = max(best, t["accuracy"])
        xs.append(spent)
        ys.append(best)
    return xs, ys


def best_at(xs: list[int], ys: list[float], epochs: float) -> float:
    """The best so far once `epochs` epochs were spent (0 before the first job ends)."""
    value = 0.0
    for x, y in zip(xs, ys, strict=True):
        if x > epochs:
            break
        value = y
    return value


def headline(runs: dict[str, list[dict[str, Any]]], reference: str, jobs: int, chance: float) -> list[str]:
    target = statistics.median(best_after(r["trials"], jobs) for r in runs[reference])
    lines = [
        f"Reference: `{reference}`, median best@{jobs} = {target:.4f} over {len(runs[reference])} seeds.\n",
        f"| configuration | seeds | epochs to the reference's median best@{jobs} (median; reached in) | "
        f"ratio to the reference | epochs to 99% of it (median; reached in) | ratio | median best@{jobs} | "
        f"worst seed's best@{jobs} | epochs spent (median) | near-chance jobs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref_epochs = statistics.median(epochs_to_reach(r["trials"], target) for r in runs[reference])
    ref_near = statistics.median(epochs_to_reach(r["trials"], 0.99 * target) for r in runs[reference])
    for config, rows in runs.items():
        reach = [epochs_to_reach(r["trials"], target) for r in rows]
        median_reach = statistics.median(reach)
        ratio = median_reach / ref_epochs if math.isfinite(median_reach) and math.isfinite(ref_epochs) else math.inf
        done = [t for r in rows for t in r["trials"] if not t["pruned"]]
        near = sum(t["accuracy"] <= NEAR_CHANCE * chance for t in done) / max(1, len(done))
        bests = [best_after(r["trials"], jobs) for r in rows]
        close = [epochs_to_reach(r["trials"], 0.99 * target) for r in rows]
        median_close = statistics.median(close)
        close_ratio = median_close / ref_near if math.isfinite(median_close) and math.isfinite(ref_near) else math.inf
        spent = statistics.median(sum(t["epochs"] for t in r["trials"]) for r in rows)
        lines.append(
            f"| {config} | {len(rows)} | {median_reach:g} ({sum(math.isfinite(x) for x in reach)}/{len(rows)}) | "
            f"{ratio:.2f} | {median_close:g} ({sum(math.isfinite(x) for x in close)}/{len(rows)}) | "
            f"{close_ratio:.2f} | {statistics.median(bests):.4f} | {min(bests):.4f} | {spent:g} | {near:.0%} |"
        )
    lines.append(
        "\n`inf`: the median seed never reached the target within the run. Ratio below 1: fewer epochs than the "
        "reference."
    )
    return lines


def ratio(mine: list[float], reference: list[float], totals: list[float] | None = None) -> float:
    """Median cost to the target over the reference's: inf when this one's median never gets
    there (no claim of a gain). When only the reference's median never does, each of its seeds
    needed at least min(its cost to the target, what it spent in all: `totals`, seed by seed), so
    its median is at least the median of those: the ratio is at most mine over that, and that
    bound is returned (0 if no totals are given)."""
    a, b = statistics.median(mine), statistics.median(reference)
    if math.isinf(a):
        return math.inf
    if math.isinf(b):
        if not totals:
            return 0.0
        return a / statistics.median(min(r, t) for r, t in zip(reference, totals, strict=True))
    return a / b


def bootstrap(
    mine: list[float], reference: list[float], draws: int = DRAWS, seed: int = 0, totals: list[float] | None = None
) -> tuple[float, float, float]:
    """The ratio's 90% interval (5th and 95th percentile, nearest rank) when the seeds of each arm
    are resampled with replacement, each arm on its own (the arms are independent searches), a
    reference seed with its total; and the share of resamples in which the ratio is below 1."""
    rng = random.Random(seed)
    pairs = list(zip(reference, totals or [0.0] * len(reference), strict=True))
    values = []
    for _ in range(draws):
        drawn = rng.choices(pairs, k=len(pairs))
        resampled = rng.choices(mine, k=len(mine))
        values.append(ratio(resampled, [r for r, _ in drawn], [t for _, t in drawn] if totals else None))
    values.sort()
    low, high = values[math.ceil(0.05 * draws) - 1], values[math.ceil(0.95 * draws) - 1]
    return low, high, sum(v < 1 for v in values) / draws


def bound_mark(mine: list[float], reference: list[float]) -> str:
    """ "≤ " when the ratio shown is the bound of a reference whose median seed never got there."""
    return "≤ " if math.isinf(statistics.median(reference)) and math.isfinite(statistics.median(mine)) else ""


def sweep(runs: dict[str, list[dict[str, Any]]], reference: str, jobs: int) -> list[str]:
    target = statistics.median(best_after(r["trials"], jobs) for r in runs[reference])
    lines = [
        f"\nRatio of epochs to reach a share of the reference's median best@{jobs} ({target:.4f}): the point "
        f"value, then the seed-bootstrap 90% interval and P(ratio < 1) over {DRAWS:,} resamples.\n",
        "| configuration | " + " | ".join(f"{share:.1%} of the target" for share in SWEEP) + " |",
        "|---|" + "---|" * len(SWEEP),
    ]
    ref = {share: [epochs_to_reach(r["trials"], share * target) for r in runs[reference]] for share in SWEEP}
    totals = [float(sum(t["epochs"] for t in r["trials"])) for r in runs[reference]]
    for config, rows in runs.items():
        cells = []
        for share in SWEEP:
            reach = [epochs_to_reach(r["trials"], share * target) for r in rows]
            low, high, below = bootstrap(reach, ref[share], totals=totals)
            mark = bound_mark(reach, ref[share])
            cells.append(f"{mark}{ratio(reach, ref[share], totals):.2f} ({low:.2f}–{high:.2f}; {below:.0%})")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines.append("\nAn interval that contains 1.00 cannot tell the configuration from the reference with these seeds.")
    return lines


_TRAINING_IMAGES: dict[str, int] = {}


def model_for(run: dict[str, Any], start_up: float = START_UP) -> CostModel:
    """The cost model of a run's dataset (raw files before --images do not record its size)."""
    images = run.get("training_images")
    if not images:
        if run["dataset"] not in _TRAINING_IMAGES:
            from bench.datasets import DATASETS

            _TRAINING_IMAGES[run["dataset"]] = len(DATASETS[run["dataset"]]().train[0])
        images = _TRAINING_IMAGES[run["dataset"]]
    return load(images).with_start_up(start_up)


def in_budget(runs: dict[str, list[dict[str, Any]]], reference: str) -> dict[str, list[dict[str, Any]]]:
    """Each configuration's runs; those that may launch more jobs (run.BUDGETED) cut at the
    reference's median GPU time: an equal budget."""
    budget = statistics.median(gpu.gpu_seconds_total(r, model_for(r)) for r in runs[reference])
    return {
        config: [gpu.within_budget(r, budget, model_for(r)) for r in rows] if config in BUDGETED else rows
        for config, rows in runs.items()
    }


def gpu_headline(runs: dict[str, list[dict[str, Any]]], reference: str, jobs: int, share: float = 0.99) -> list[str]:
    """The claim in modelled GPU time: to reach `share` of the reference's median best@jobs."""
    runs = in_budget(runs, reference)
    target = share * statistics.median(best_after(r["trials"], jobs) for r in runs[reference])

    def reach(rows: list[dict[str, Any]], start_up: float = START_UP, unit: str = "gpu") -> list[float]:
        to = gpu.gpu_seconds_to_reach if unit == "gpu" else gpu.epochs_spent_to_reach
        return [to(r, target, model_for(r, start_up)) for r in rows]

    lines = [
        f"GPU time to reach {share:.0%} of the reference's median best@{jobs} ({target:.4f}), modelled "
        f"(bench/cost.py: the stand-in's measured step cost by batch size, {START_UP:g} s billed start-up per "
        "job): the median over seeds, the ratio to the reference with its seed-bootstrap 90% interval and "
        f"P(ratio < 1) over {DRAWS:,} resamples, the same ratio in epochs, and at {START_UPS[0]:g} s and "
        f"{START_UPS[-1]:g} s of start-up.\n",
        f"| configuration | seeds | jobs at a time | GPU hours to the target (median; reached in) | ratio in GPU "
        f"time (90% interval; P < 1) | ratio in epochs (90% interval) | ratio at {START_UPS[0]:g} s start-up | "
        f"ratio at {START_UPS[-1]:g} s | median best@{jobs} | worst seed's best@{jobs} | GPU hours spent (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref = {(s, u): reach(runs[reference], s, u) for s in START_UPS for u in ("gpu", "epochs")}
    # what each reference seed spent in all: the bound of its cost when it never got there
    totals = {(s, "gpu"): [gpu.gpu_seconds_total(r, model_for(r, s)) for r in runs[reference]] for s in START_UPS}
    totals[(START_UP, "epochs")] = [float(sum(t["epochs"] for t in r["trials"])) for r in runs[reference]]

    def cell(mine: list[float], key: tuple[float, str]) -> str:
        return f"{bound_mark(mine, ref[key])}{ratio(mine, ref[key], totals[key]):.2f}"

    for config, rows in runs.items():
        mine = reach(rows)
        low, high, below = bootstrap(mine, ref[(START_UP, "gpu")], totals=totals[(START_UP, "gpu")])
        epochs = reach(rows, unit="epochs")
        e_low, e_high, _ = bootstrap(epochs, ref[(START_UP, "epochs")], totals=totals[(START_UP, "epochs")])
        extremes = [cell(reach(rows, s), (s, "gpu")) for s in (START_UPS[0], START_UPS[-1])]
        bests = [best_after(r["trials"], len(r["trials"])) for r in rows]
        spent = statistics.median(gpu.gpu_seconds_total(r, model_for(r)) for r in rows) / 3600
        median = statistics.median(mine)
        lines.append(
            f"| {config} | {len(rows)} | {rows[0].get('parallel', 1)} | {median / 3600:.2f} "
            f"({sum(math.isfinite(x) for x in mine)}/{len(rows)}) | **{cell(mine, (START_UP, 'gpu'))}** "
            f"({low:.2f}–{high:.2f}; {below:.0%}) | {cell(epochs, (START_UP, 'epochs'))} "
            f"({e_low:.2f}–{e_high:.2f}) | {extremes[0]} | {extremes[1]} | {statistics.median(bests):.4f} | "
            f"{min(bests):.4f} | {spent:.2f} |"
        )
    lines.append(
        "\n`≤`: the reference's median seed never reached the target. Each of its seeds needed at least "
        "min(its cost to the target, what it spent in all), so the ratio is at most the one shown; resamples in "
        "which that happens count with this bound. The start-up columns re-price the same search (the same "
        "jobs in the same order) at another start-up. A configuration marked as budgeted (bench.run.BUDGETED) "
        "may launch more jobs; it is cut at the reference's median GPU time, and its best is the best within "
        "that budget."
    )
    return lines


def gpu_sweep(runs: dict[str, list[dict[str, Any]]], reference: str, jobs: int) -> list[str]:
    runs = in_budget(runs, reference)
    best = statistics.median(best_after(r["trials"], jobs) for r in runs[reference])
    lines = [
        f"\nRatio of modelled GPU time to reach a share of the reference's median best@{jobs} ({best:.4f}): the "
        "point value, then the seed-bootstrap 90% interval and P(ratio < 1).\n",
        "| configuration | " + " | ".join(f"{share:.1%} of the target" for share in SWEEP) + " |",
        "|---|" + "---|" * len(SWEEP),
    ]
    ref = {share: [gpu.gpu_seconds_to_reach(r, share * best, model_for(r)) for r in runs[reference]] for share in SWEEP}
    totals = [gpu.gpu_seconds_total(r, model_for(r)) for r in runs[reference]]
    for config, rows in runs.items():
        cells = []
        for share in SWEEP:
            mine = [gpu.gpu_seconds_to_reach(r, share * best, model_for(r)) for r in rows]
            low, high, below = bootstrap(mine, ref[share], totals=totals)
            mark = bound_mark(mine, ref[share])
            cells.append(f"{mark}{ratio(mine, ref[share], totals):.2f} ({low:.2f}–{high:.2f}; {below:.0%})")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return lines


def plot(runs: dict[str, list[dict[str, Any]]], dataset: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    for config, rows in runs.items():
        curves = [curve(r["trials"]) for r in rows]
        grid = sorted({x for xs, _ in curves for x in xs})
        at = [[best_at(xs, ys, g) for xs, ys in curves] for g in grid]
        (line,) = ax.plot(grid, [statistics.median(v) for v in at], label=f"{config} ({len(rows)} seeds)")
        ax.fill_between(grid, [min(v) for v in at], [max(v) for v in at], color=line.get_color(), alpha=0.12)
    ax.set_xlabel("training epochs spent (all jobs so far)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"{dataset}: median over seeds; band = worst to best seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def regions(results: list[dict[str, Any]], chance: float) -> list[str]:
    trials = [t for r in results for t in r["trials"] if not t["pruned"]]
    lines = [
        f"Share of near-chance jobs (accuracy at most {NEAR_CHANCE}x chance = {NEAR_CHANCE * chance:.3f}) per "
        "band of each hyperparameter an optimizer reads; n = completed jobs in the band.\n",
        "| optimizer | hyperparameter | bands: share near chance (n) |",
        "|---|---|---|",
    ]
    for optimizer, names in READS.items():
        mine = [t for t in trials if t["optimizer"] == optimizer]
        for name in names:
            cells = []
            edges = BANDS[name]
            for lo, hi in zip(edges, edges[1:], strict=False):
                last = hi == edges[-1]
                accuracies = [
                    t["accuracy"]
                    for t in mine
                    if name in t["hyperparameters"]
                    and lo <= float(t["hyperparameters"][name]) < (hi if not last else math.inf)
                ]
                if accuracies:
                    near = sum(a <= NEAR_CHANCE * chance for a in accuracies) / len(accuracies)
                    cells.append(f"[{lo:g}, {hi:g}{']' if last else ')'}: {near:.0%} ({len(accuracies)})")
            lines.append(f"| {optimizer} | {name} | {' · '.join(cells)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analyze", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--reference", help="configuration name of the reference (default: the first in the file)")
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = json.loads(args.raw.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.raw.name.removesuffix(".raw.json").removesuffix(".json")
    for dataset in sorted({r["dataset"] for r in results}):
        mine = [r for r in results if r["dataset"] == dataset]
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in mine:
            runs.setdefault(r["config"], []).append(r)
        reference = args.reference or mine[0]["config"]
        runs = {reference: runs[reference], **runs}  # the reference's row first
        chance = 1.0 / mine[0]["num_classes"]
        name = f"{stem}.{dataset}" if len({r["dataset"] for r in results}) > 1 else stem
        plot(runs, dataset, args.out / f"{name}.anytime.png")
        source = f"Source: `{args.raw}`; command: `python -m bench.analyze {args.raw} --out {args.out}`.\n"
        (args.out / f"{name}.anytime.md").write_text(
            "\n".join(
                [
                    f"# Anytime performance: {dataset}\n",
                    source,
                    "## In modelled GPU time\n",
                    *gpu_headline(runs, reference, args.jobs),
                    *gpu_sweep(runs, reference, args.jobs),
                    "\n## In epochs, one after another (launch order; budgeted configurations cut as above)\n",
                    *headline(in_budget(runs, reference), reference, args.jobs, chance),
                    *sweep(in_budget(runs, reference), reference, args.jobs),
                ]
            )
            + f"\n\n![anytime]({name}.anytime.png)\n"
        )
        (args.out / f"{name}.regions.md").write_text(
            "\n".join([f"# Near-chance regions: {dataset}\n", source, *regions(mine, chance)]) + "\n"
        )
        print(f"wrote {args.out}/{name}.anytime.png, .anytime.md, .regions.md")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
