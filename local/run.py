"""The README's main command: the whole pipeline on this machine, on a sample dataset.

    python -m local.run [--jobs N] [--parallel P] [--epochs E] [--layout L] [--images DIR]

Synthesizes the app, builds the sample dataset (scikit-learn's digits, written as PNG files),
uploads it to local S3 with the manifest last, lets the synthesized rule decide whether to
start the synthesized state machine, trains for real on the CPU, and shows the leaderboard,
the registered model version and the notification.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from local.harness import LocalPipeline
from local.report import write_report
from local.sample import build_sample
from pipeline.contract import BestJob, Registered, Run, Tuning
from tools import dataset as dataset_cli
from tools.synth import ROOT, synthesize

OUT = ROOT / "local-run"


class Progress:
    """Prints what the local SageMaker does, as it does it."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.best: float | None = None
        self.started = time.time()
        self.bars: dict[str, tqdm[Any]] = {}

    def write(self, text: str) -> None:
        tqdm.write(f"[{time.time() - self.started:6.1f}s] {text}", file=self.stream)
        self.stream.flush()

    def fetched(self, channel: str, done: int, total: int) -> None:
        """A channel's images arriving from S3, once per run, as a progress bar."""
        bar = self.bars.get(channel)
        if bar is None:
            bar = self.bars[channel] = tqdm(
                total=total, desc=f"fetching the images of {channel}", unit="image", file=self.stream
            )
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def __call__(self, event: str, d: dict[str, Any]) -> None:
        if event == "fetch":
            self.fetched(d["channel"], d["done"], d["total"])
        elif event == "training_started":
            hps = ", ".join(f"{k}={_short(v)}" for k, v in sorted(d["hyperparameters"].items()))
            label = f" [{d['definition']}]" if d.get("definition") else ""
            self.write(f"start {d['job']}{label}: {hps}")
        elif event == "epoch":
            self.write(f"  {d['job']} epoch {d['epoch'] + 1}: validation accuracy {d['accuracy']:.4f}")
        elif event == "training_ended":
            accuracy = d.get("accuracy")
            if d["status"] == "Completed" and accuracy is not None and (self.best is None or accuracy > self.best):
                self.best = accuracy
            tail = f" ({d['reason']})" if d.get("reason") else ""
            shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
            best = "n/a" if self.best is None else f"{self.best:.4f}"
            self.write(f"end   {d['job']}: {d['status']}, accuracy {shown}, best so far {best}{tail}")
        elif event == "transform_progress" and d["done"] == d["total"]:
            self.write(f"test split: {d['total']} held-out images answered by the best model ({d['job']})")
        elif event == "transform_ended" and d["status"] != "Completed":
            self.write(f"test evaluation {d['job']}: {d['status']} {d.get('reason') or ''}".rstrip())
        elif event == "tuning_ended":
            self.write(f"tuning job {d['job']}: {d['status']} {d.get('reason') or ''}".rstrip())
        elif event == "model_registered":
            self.write(f"registered {d['arn']}")


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _tested(tested: dict[str, Any] | None) -> str:
    if not tested or tested.get("accuracy") is None:
        return "no test split: the accuracy above is the best validation score (optimistic)"
    return f"accuracy {tested['accuracy']:.4f} on {tested['samples']} held-out images ({tested['evaluation_uri']})"


def leaderboard(pipeline: LocalPipeline, job_names: tuple[str, ...]) -> list[dict[str, Any]]:
    sm = pipeline.client("sagemaker")
    rows = []
    for name in job_names:
        pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name
        )
        for page in pages:
            for s in page["TrainingJobSummaries"]:
                metric = s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
                rows.append(
                    {
                        "job": s["TrainingJobName"],
                        "definition": s.get("TrainingJobDefinitionName", ""),
                        "status": s["TrainingJobStatus"],
                        "accuracy": metric,
                        "hyperparameters": s["TunedHyperParameters"],
                        "created": s["CreationTime"].timestamp(),
                    }
                )
    return sorted(rows, key=lambda r: r["created"])


def local_account_quotas() -> dict[str, int]:
    """The local account's quotas: what the `local` environment's capacity asks for, so admission
    reads them from Service Quotas as it would in a real account."""
    block = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"]["local"]
    tuning = block["tuning"]
    usage = {tuning["instance_type"]: "training", tuning.get("evaluation_instance_type", "ml.m5.xlarge"): "transform"}
    return {f"{kind} for {usage[kind]} job usage": slots for kind, slots in block["capacity"].items() if kind in usage}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress = Progress()
    OUT.mkdir(exist_ok=True)
    progress.write("synthesizing the CDK app (cdk-nag runs too)")
    prefix = synthesize(OUT / "cdk.out", "local")

    images = args.images
    if images is None:
        images = build_sample(OUT / "sample-images")
        progress.write(f"sample dataset: scikit-learn digits as PNG files in {images}")
    tuning: dict[str, Any] = {}
    for key in ("jobs", "parallel", "epochs", "layout", "strategy"):
        value = getattr(args, key)
        if value is not None:
            tuning[{"jobs": "max_training_jobs", "parallel": "max_parallel_jobs"}.get(key, key)] = value
    if args.layout == "job_per_optimizer" or (args.early_stopping and args.layout in ("job_per_optimizer", "flat")):
        tuning["early_stopping"] = "Auto" if args.early_stopping else "Off"
    prepared = dataset_cli.prepare(
        images,
        OUT / "dataset",
        tuning=tuning or None,
        progress=False,
        format=args.format,
        test_fraction=args.test_fraction,
    )
    progress.write(
        f"prepared {prepared.train} training / {prepared.validation} validation / {prepared.test} test images, "
        f"{len(prepared.classes)} classes"
    )

    with LocalPipeline(OUT / "cdk.out", prefix, seed=args.seed, quotas=local_account_quotas()) as pipeline:
        pipeline.sagemaker_service.listeners.append(progress)
        s3 = pipeline.client("s3")
        name = args.name
        put = dataset_cli.upload(prepared.root, s3, pipeline.deployed.datasets_bucket, name, progress=False)
        key = f"datasets/{name}/manifest.json"
        event = pipeline.object_created_event(key, put)
        execution = pipeline.deliver(event)
        if execution is None:
            progress.write("the rule did not match the upload: no run started")
            return 1
        progress.write(f"manifest uploaded (version {put['VersionId']}): the rule matched, execution started")
        result = pipeline.wait(execution, timeout=args.timeout)
        progress.write(f"execution {result['status']}")
        output = json.loads(result.get("output") or "{}")
        notifications = pipeline.notifications()
        if result["status"] != "SUCCEEDED":
            for n in notifications:
                sys.stdout.write(f"\n{n['subject']}\n{n['message']}\n")
            return 1

        run, best = Run.from_dict(output["run"]), BestJob.from_dict(output["best"])
        registered = Registered(**output["registered"])
        job_names = Tuning.from_dict(output["tuning"]).job_names
        rows = leaderboard(pipeline, job_names)
        sys.stdout.write("\nLeaderboard (validation accuracy)\n")
        for rank, row in enumerate(sorted(rows, key=lambda r: -(r["accuracy"] or -1)), start=1):
            acc = "  n/a " if row["accuracy"] is None else f"{row['accuracy']:.4f}"
            hps = ", ".join(f"{k}={_short(v)}" for k, v in sorted(row["hyperparameters"].items()))
            sys.stdout.write(f"{rank:3d}. {acc}  {row['status']:<9} {row['job']}  {row['definition']}  {hps}\n")

        sm = pipeline.client("sagemaker")
        package = sm.describe_model_package(ModelPackageName=registered.model_package_arn)
        meta = package["CustomerMetadataProperties"]
        sys.stdout.write(
            "\nRegistered model version\n"
            f"  package:    {package['ModelPackageArn']} (version {package['ModelPackageVersion']}, {package['ModelApprovalStatus']})\n"
            f"  accuracy:   {meta['validation_accuracy']}\n"
            f"  optimizer:  {meta['optimizer']}\n"
            f"  hyperparameters: {json.dumps(best.hyperparameters)}\n"
            f"  test:       {_tested(output.get('tested'))}\n"
            f"  artifact:   {package['InferenceSpecification']['Containers'][0]['ModelDataUrl']}\n"
            f"  metrics:    {registered.metrics_uri}\n"
            f"  cost:       {best.bill.billable_seconds if best.bill else 'n/a'} s billed, about "
            f"${best.bill.estimated_cost_usd if best.bill else 0:,.2f} at {run.cost.basis} "
            f"(worst case allowed ${run.cost.worst_case_usd:,.2f})\n"
        )
        for n in notifications:
            sys.stdout.write(f"\nNotification: {n['subject']}\n{n['message']}")
        report = write_report(pipeline, output, rows)
        sys.stdout.write(f"\nReport: {report['local_path']} (also at {report['s3_uri']})\n")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m local.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--jobs", type=int, help="training jobs in the run (default from cdk.json 'local': 8)")
    p.add_argument("--parallel", type=int, help="training jobs at once (default 2)")
    p.add_argument("--epochs", type=int, help="epochs per training job (default 4)")
    p.add_argument("--layout", choices=["definitions", "job_per_optimizer", "flat"])
    p.add_argument("--strategy", choices=["Bayesian", "Random", "Hyperband"])
    p.add_argument(
        "--early-stopping",
        action="store_true",
        help="TrainingJobEarlyStoppingType=Auto (layouts job_per_optimizer, flat)",
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.15, help="held-out test split evaluated after tuning (0: none)"
    )
    p.add_argument(
        "--format",
        choices=dataset_cli.FORMATS_WRITTEN,
        default="image",
        help="image files + .lst, or augmented manifests",
    )
    p.add_argument("--images", type=Path, help="a folder of class sub-folders instead of the sample digits")
    p.add_argument("--name", default="digits", help="dataset name (the S3 prefix datasets/<name>/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
