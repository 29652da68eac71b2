"""Search-efficiency benchmark: which layout, scaling, strategy, early stopping and completion
criteria reach the best accuracy for the fewest training epochs (the proxy for GPU money).

    python -m bench.run [--seeds 10] [--jobs 30] [--epochs 6] [--workers 2] [--configs a,b]

Each configuration is a set of tuning settings, turned into CreateHyperParameterTuningJob
requests by the pipeline's own request builder, then searched by the local SageMaker's search
(Optuna) with the local trainer, on two generated datasets, over several seeds, side by side in
one run. Results: bench-results/results.json and bench-results/results.md. Not a test: it
takes tens of minutes and its numbers depend on the machine only through time, not outcome.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import local  # noqa: F401  (puts lambdas/ on the path)
from bench import cost as cost_model
from bench.cost import CostModel
from bench.datasets import DATASETS, PREVIOUS_VERSION, Data
from local.sagemaker import search, trainer
from pipeline import contract
from pipeline.aws.input_forms import INPUT_FORMATS, Channel
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.request import Destinations, build_tuning_requests

OUT = Path(__file__).resolve().parents[1] / "bench-results"
CHECKPOINTS = (5, 10, 20, 30)
LOG_LR = {"learning_rate": {"scaling": "Logarithmic"}}
LOG_EPS_GAMMA = {"eps": {"scaling": "Logarithmic"}, "gamma": {"scaling": "Logarithmic"}}
COMPLETION_10 = {"max_jobs_not_improving": 10}
PER_OPTIMIZER = {
    "sgd": {"learning_rate": {"max": 0.1}, "weight_decay": {"max": 0.01}},
    "nag": {"learning_rate": {"max": 0.1}, "weight_decay": {"max": 0.01}},
    "rmsprop": {"eps": {"min": 0.01}},
}

# name -> tuning settings (the `tuning` block of a manifest). Every configuration names its
# preset: the default preset may change, the reference may not. The first is the reference:
# the documented table, literally (tests/test_bench.py holds it to the seed document).
REFERENCE = "documented (flat, Bayesian)"
WARM = "documented (flat, Bayesian), warm start"
LOG_BATCH = "flat, documented + log mini_batch_size"
HYPERBAND = "flat, documented, Hyperband, equal GPU time"
# Configurations that may launch this many times --jobs: bench.analyze stops them at the
# reference's median GPU time (an equal budget, not an equal job count).
BUDGETED = {HYPERBAND: 4}
CONFIGS: dict[str, dict[str, Any]] = {
    REFERENCE: {"preset": "documented", "layout": "flat"},
    "default (definitions, measured)": {"preset": "measured", "layout": "definitions"},
    "definitions, documented": {"preset": "documented", "layout": "definitions"},
    "job_per_optimizer, documented": {"preset": "documented", "layout": "job_per_optimizer"},
    "flat, documented, Random": {"preset": "documented", "layout": "flat", "strategy": "Random"},
    "flat, documented, Hyperband": {"preset": "documented", "layout": "flat", "strategy": "Hyperband"},
    "flat, documented, early stopping": {"preset": "documented", "layout": "flat", "early_stopping": "Auto"},
    "definitions, measured + log lr": {"preset": "measured", "layout": "definitions", "ranges": LOG_LR},
    "definitions, measured + log eps, gamma": {
        "preset": "measured",
        "layout": "definitions",
        "ranges": LOG_EPS_GAMMA,
    },
    # Candidate bounds from the near-chance regions of the committed trials
    # (bench/results/results-10-seeds-shapes.regions.md); to be confirmed on held-out data.
    "definitions, measured + per-optimizer bounds": {
        "preset": "measured",
        "layout": "definitions",
        "optimizer_ranges": PER_OPTIMIZER,
    },
    "definitions, measured, Hyperband": {"preset": "measured", "layout": "definitions", "strategy": "Hyperband"},
    "job_per_optimizer, measured, early stopping": {
        "preset": "measured",
        "layout": "job_per_optimizer",
        "early_stopping": "Auto",
    },
    "definitions, measured, stop after 10 not improving": {
        "preset": "measured",
        "layout": "definitions",
        "completion": COMPLETION_10,
    },
    # Warm start from the previous run on the previous version of the dataset (`--parents`).
    # SageMaker forbids warm start with layout `definitions`: the reference's layout carries it.
    WARM: {"preset": "documented", "layout": "flat", "warm_start": True},
    # Issue 21's levers, side by side with the reference in one run.
    LOG_BATCH: {"preset": "documented", "layout": "flat", "ranges": {"mini_batch_size": {"scaling": "Logarithmic"}}},
    HYPERBAND: {"preset": "documented", "layout": "flat", "strategy": "Hyperband"},
}
# a warm-started configuration -> the configuration of the previous run it starts from
WARM_PARENT = {WARM: REFERENCE}


def requests_for(
    config: dict[str, Any], data: Data, jobs: int, epochs: int, parents: bool = False, parallel: int = 1
) -> list[dict[str, Any]]:
    settings = TuningSettings.from_mapping(
        {
            **config,
            "max_training_jobs": jobs,
            "max_parallel_jobs": max(parallel, 4) if config.get("layout") == "job_per_optimizer" else parallel,
            "epochs": epochs,
            "image_shape": data.image_shape,
            "use_pretrained_model": False,
        },
        where="benchmark",
    )
    facts = contract.Data(
        format="image",
        num_classes=data.num_classes,
        num_training_samples=len(data.train[0]),
        num_validation_samples=len(data.validation[0]),
        channels=tuple(
            Channel(name, uri, INPUT_FORMATS["image"].form)
            for name, uri in (("train", "s3://b/t/"), ("validation", "s3://b/v/"))
        ),
    )
    dest = Destinations("arn:aws:iam::123456789012:role/r", "image:1", "s3://b/out/", "s3://b/ckpt/")
    # The previous run's job is the parent of each job of this run (the pipeline's StartTuning).
    previous = {"bench-0000000000": ["bench-previous"]} if parents else None
    return build_tuning_requests("bench-0000000000", settings, facts, dest, warm_start_parents=previous)


def run_tuning_job(
    request: dict[str, Any],
    data: Data,
    seed: int,
    parents: Sequence[search.Observation] = (),
    parallel: int = 1,
    cost: CostModel | None = None,
) -> list[dict[str, Any]]:
    """One tuning job, as the local SageMaker runs it but without S3 or threads: `parallel` jobs
    at a time on a modelled clock. A job is trained when it is launched (its outcome does not
    depend on what runs beside it), lasts what `cost` says SageMaker would bill it, and the search
    learns its result only when it ends; the next job starts in the slot it frees."""
    config = request["HyperParameterTuningJobConfig"]
    cost = cost or cost_model.load(len(data.train[0]))
    study = search.make_study(request, seed)
    definitions = search.definitions_of(request)
    if "WarmStartConfig" in request:
        search.warm_start(study, definitions, list(parents))
    patience = (
        config.get("TuningJobCompletionCriteria", {})
        .get("BestObjectiveNotImproving", {})
        .get("MaxNumberOfTrainingJobsNotImproving")
    )
    limit = config["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    trials: list[dict[str, Any]] = []
    running: list[tuple[float, int, Any, dict[str, Any]]] = []  # (ends at, launch index, trial, record)
    best, since, clock, stopped = -1.0, 0, 0.0, False
    while running or (len(trials) < limit and not stopped):
        while len(running) < parallel and len(trials) < limit and not stopped:
            trial = study.ask()
            record = _train(trial, definitions, data, seed * 1000 + len(trials))
            record["start"] = clock
            record["end"] = clock + cost.job_seconds(record["epochs"], record["mini_batch_size"])
            running.append((record["end"], len(trials), trial, record))
            trials.append(record)
        running.sort(key=lambda job: (job[0], job[1]))
        clock, _, trial, record = running.pop(0)
        if record["pruned"]:
            study.tell(trial, state=search.optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, record["accuracy"])
        # SageMaker's best counts completed jobs only; an early-stopped job still cost its epochs.
        if not record["pruned"] and record["accuracy"] > best:
            best, since = record["accuracy"], 0
        else:
            since += 1
        if patience and since >= patience:
            stopped = True  # the jobs still running finish; no new one starts
    return trials


def _train(trial: Any, definitions: list[search.Definition], data: Data, seed: int) -> dict[str, Any]:
    definition, tuned = search.sample(trial, definitions)
    hp = trainer.Hyperparameters.parse({**definition.static, **tuned, "resize": "0"})
    history: list[float] = []

    def on_epoch(epoch: int, accuracy: float) -> bool:
        history.append(accuracy)
        trial.report(accuracy, epoch + 1)
        return not trial.should_prune()

    try:
        trainer.train(
            hp, data.train, data.validation, seed=seed, on_epoch=on_epoch, stop=threading.Event(), log=lambda _: None
        )
    except trainer.AlgorithmError:
        pass
    return {
        "accuracy": history[-1] if history else 0.0,
        "epochs": len(history),
        "pruned": len(history) < hp.epochs,
        "optimizer": tuned.get("optimizer") or definition.static.get("optimizer"),
        "mini_batch_size": hp.mini_batch_size,
        "hyperparameters": tuned,
        "history": history,  # validation accuracy after each epoch
    }


def parent_trials(raw: Path | None, dataset: str, config: str, seed: int, epochs: int) -> list[search.Observation]:
    """The finished jobs of the previous run: the parent configuration, same seed, same epochs
    per job, on the previous version of the dataset, from the raw trials of an earlier run."""
    if config not in WARM_PARENT:
        return []
    if raw is None:
        raise SystemExit(f"{config!r} warm-starts from an earlier run: pass --parents <raw.json>")
    previous = PREVIOUS_VERSION[dataset]
    runs = [
        r
        for r in json.loads(raw.read_text())
        if (r["dataset"], r["config"], r["seed"]) == (previous, WARM_PARENT[config], seed)
    ]
    if not runs:
        raise SystemExit(f"{raw}: no {WARM_PARENT[config]!r} run of {previous!r} with seed {seed} to warm-start from")
    finished = [t for t in runs[0]["trials"] if not t["pruned"]]
    if any(t["epochs"] != epochs for t in finished):
        raise SystemExit(
            f"{raw}: the previous run trained other than {epochs} epochs per job; its scores do not compare"
        )
    return [search.Observation(None, t["hyperparameters"], t["accuracy"]) for t in finished]


Task = tuple[str, str, int, int, int, "str | None", int, int]


def run_one(task: Task) -> list[dict[str, Any]]:
    """One configuration on one dataset and seed. A warm-started configuration without `--parents`
    first runs its parent configuration on the previous version of the dataset, same seed, and
    returns both runs (the retrain's lineage, in one task)."""
    import torch

    torch.set_num_threads(1)
    dataset, config_name, seed, jobs, epochs, parents_raw, parallel, images = task
    out: list[dict[str, Any]] = []
    parents: list[search.Observation] = []
    if config_name in WARM_PARENT:
        if parents_raw:
            parents = parent_trials(Path(parents_raw), dataset, config_name, seed, epochs)
        else:
            parent = _run(PREVIOUS_VERSION[dataset], WARM_PARENT[config_name], seed, jobs, epochs, [], parallel, images)
            out.append(parent)
            parents = [
                search.Observation(None, t["hyperparameters"], t["accuracy"])
                for t in parent["trials"]
                if not t["pruned"]
            ]
    out.append(_run(dataset, config_name, seed, jobs, epochs, parents, parallel, images))
    return out


def _run(
    dataset: str,
    config_name: str,
    seed: int,
    jobs: int,
    epochs: int,
    parents: list[search.Observation],
    parallel: int,
    images: int,
) -> dict[str, Any]:
    data = DATASETS[dataset](images) if images else DATASETS[dataset]()
    started = time.time()
    limit = jobs * BUDGETED.get(config_name, 1)
    requests = requests_for(CONFIGS[config_name], data, limit, epochs, parents=bool(parents), parallel=parallel)
    cost = cost_model.load(len(data.train[0]))
    per_job = [run_tuning_job(r, data, seed * 31 + i, parents, parallel, cost) for i, r in enumerate(requests)]
    # Tuning jobs of one run go side by side: interleave their training jobs in launch order.
    trials = [t for group in _round_robin(per_job) for t in group]
    return {
        "dataset": dataset,
        "config": config_name,
        "seed": seed,
        "trials": trials,
        "seconds": time.time() - started,
        "num_classes": data.num_classes,
        "training_images": len(data.train[0]),
        "parallel": parallel,
        "parents": len(parents),
    }


def _round_robin(groups: list[list[Any]]) -> list[list[Any]]:
    out = []
    for i in range(max(len(g) for g in groups)):
        out.append([g[i] for g in groups if i < len(g)])
    return out


def best_after(trials: list[dict[str, Any]], n: int) -> float:
    done = [t["accuracy"] for t in trials[:n] if not t["pruned"]]
    return max(done, default=0.0)


def epochs_to_reach(trials: list[dict[str, Any]], target: float) -> float:
    spent = 0
    for t in trials:
        spent += t["epochs"]
        if not t["pruned"] and t["accuracy"] >= target:
            return spent
    return math.inf


def summarize(results: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    reference = REFERENCE if any(r["config"] == REFERENCE for r in results) else results[0]["config"]
    for dataset in sorted({r["dataset"] for r in results}):
        rows = [r for r in results if r["dataset"] == dataset]
        ref_best = [best_after(r["trials"], jobs) for r in rows if r["config"] == reference]
        target = statistics.median(ref_best)
        chance = 1.0 / rows[0]["num_classes"]
        # Paired by seed: each seed's own reference best-at-N is that seed's target.
        ref_by_seed = {r["seed"]: best_after(r["trials"], jobs) for r in rows if r["config"] == reference}
        ref_epochs = {
            r["seed"]: epochs_to_reach(r["trials"], ref_by_seed[r["seed"]]) for r in rows if r["config"] == reference
        }
        table = {}
        for config in dict.fromkeys(r["config"] for r in rows):  # in the order they ran
            runs = [r for r in rows if r["config"] == config]
            if not runs:
                continue
            to_target = [epochs_to_reach(r["trials"], target) for r in runs]
            paired = [
                epochs_to_reach(r["trials"], ref_by_seed[r["seed"]]) / ref_epochs[r["seed"]]
                for r in runs
                if r["seed"] in ref_by_seed
            ]
            all_trials = [t for r in runs for t in r["trials"]]
            table[config] = {
                "best_after": {
                    n: statistics.median(best_after(r["trials"], n) for r in runs) for n in CHECKPOINTS if n <= jobs
                },
                "best_at_end_min": min(best_after(r["trials"], jobs) for r in runs),
                "epochs_to_reference": statistics.median(to_target),
                "reached_reference": sum(math.isfinite(x) for x in to_target),
                "paired_epoch_ratio_median": statistics.median(paired) if paired else math.inf,
                "paired_reached": sum(math.isfinite(x) for x in paired),
                "epochs_total": statistics.median(sum(t["epochs"] for t in r["trials"]) for r in runs),
                "wasted_share": sum(t["accuracy"] <= 1.5 * chance for t in all_trials if not t["pruned"])
                / max(1, sum(not t["pruned"] for t in all_trials)),
                "seeds": len(runs),
            }
        summary[dataset] = {"reference": reference, "target": target, "configs": table}
    return summary


def markdown(summary: dict[str, Any], jobs: int, epochs: int) -> str:
    lines = []
    for dataset, s in summary.items():
        ref = s["configs"][s["reference"]]["epochs_to_reference"]
        lines.append(f"\n### {dataset} (reference: {s['reference']}, median best-at-{jobs} = {s['target']:.4f})\n")
        head = " | ".join(f"best@{n}" for n in CHECKPOINTS if n <= jobs)
        lines.append(
            f"| configuration | {head} | epochs to reference (median) | ratio to the reference | reached | "
            "epoch ratio paired by seed (median) | reached own seed's reference | epochs spent | wasted jobs |"
        )
        lines.append("|---|" + "---|" * (len([n for n in CHECKPOINTS if n <= jobs]) + 7))
        for config, row in s["configs"].items():
            best = " | ".join(f"{v:.4f}" for v in row["best_after"].values())
            e = row["epochs_to_reference"]
            ratio = e / ref if math.isfinite(e) and math.isfinite(ref) and ref else math.inf
            lines.append(
                f"| {config} | {best} | {e:g} | {ratio:.2f} | {row['reached_reference']}/{row['seeds']} | "
                f"{row['paired_epoch_ratio_median']:.2f} | {row['paired_reached']}/{row['seeds']} | "
                f"{row['epochs_total']:g} | {row['wasted_share']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1 (hold-out: 10)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder for raw.json, results.json and results.md")
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--parallel", type=int, default=1, help="training jobs at a time in each tuning job (deployed: 2)"
    )
    parser.add_argument("--images", type=int, default=0, help="images per generated dataset (default: its own)")
    parser.add_argument("--datasets", default="digits,shapes")
    parser.add_argument(
        "--configs", default="", help="semicolon-separated subset of configuration names (default: all)"
    )
    parser.add_argument(
        "--parents", type=Path, help="raw.json of the previous run, for the warm-started configurations"
    )
    parser.add_argument("--summarize", type=Path, help="only re-summarize the raw.json of an earlier run")
    args = parser.parse_args(argv)
    if args.summarize:
        raw = json.loads(args.summarize.read_text())
        sys.stdout.write(markdown(summarize(raw, args.jobs), args.jobs, args.epochs))
        return 0
    configs = [c for c in CONFIGS if not args.configs or c in [n.strip() for n in args.configs.split(";")]]
    datasets = args.datasets.split(",")
    # A warm-started configuration without --parents runs its parent in the same task (run_one).
    lineage = {
        (PREVIOUS_VERSION[d], WARM_PARENT[c])
        for d in datasets
        for c in configs
        if c in WARM_PARENT and d in PREVIOUS_VERSION and not args.parents
    }
    tasks: list[Task] = [
        (d, c, s, args.jobs, args.epochs, str(args.parents) if args.parents else None, args.parallel, args.images)
        for s in range(args.first_seed, args.first_seed + args.seeds)
        for d in datasets
        for c in configs
        # a warm-started configuration needs a previous version of the dataset
        if (c not in WARM_PARENT or d in PREVIOUS_VERSION) and (d, c) not in lineage
    ]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.time()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for i, done in enumerate(pool.map(run_one, tasks), start=1):
            for result in done:
                results.append(result)
                sys.stdout.write(
                    f"[{time.time() - started:7.0f}s] {i}/{len(tasks)} {result['dataset']:<9} seed {result['seed']} "
                    f"{result['config']}: best {best_after(result['trials'], args.jobs):.4f} "
                    f"in {result['seconds']:.0f}s\n"
                )
            sys.stdout.flush()
            (out / "raw.json").write_text(json.dumps(results))
    summary = summarize(results, args.jobs)
    meta = {"seeds": args.seeds, "jobs": args.jobs, "epochs": args.epochs, "seconds": time.time() - started}
    (out / "results.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=2, default=str))
    table = markdown(summary, args.jobs, args.epochs)
    (out / "results.md").write_text(
        f"Benchmark: {args.seeds} seeds from {args.first_seed}, {args.jobs} jobs, {args.epochs} epochs, "
        f"command `python -m bench.run {' '.join(argv if argv is not None else sys.argv[1:])}`\n{table}"
    )
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
