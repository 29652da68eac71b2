"""Scale benchmark (not a test): the first step and ChooseBest on datasets and runs of real size.

    python -m bench.scale                     # 10k, 100k and 1.28M training images; 750 training jobs
    python -m bench.scale --sizes 10000 --list-ms 75 --get-ms 20

The S3 stand-in serves what the validation step calls (paginated ListObjectsV2 with 1,000 keys
a page and an optional delimiter, GetObject streamed in chunks), waits a latency per call like S3
from Lambda (75 ms per LIST, 20 ms + 100 MB/s per GET by default) and counts calls. Each page
goes through botocore's own XML parser, as a real client's would (`--parse raw`: timestamps
kept as text, as the validation client is configured; `datetime`: botocore's default; `none`).
Keys are generated on demand, so 1.28M of them cost nothing to hold. Wall and CPU time come from one
run; memory is the tracemalloc peak of a second run (Python allocations of the validation alone;
the stand-in's own storage is allocated before).
Results: bench/results/scale.md and scale.json.
"""

from __future__ import annotations

import argparse
import bisect
import html
import io
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
from botocore.parsers import RestXMLParser

import local  # noqa: F401  (puts lambdas/ on the path)
from handlers.choose_best import best_of_run
from pipeline.dataset.validation import validate_dataset
from pipeline.settings.tuning_settings import TuningSettings

RESULTS = Path(__file__).parent / "results"
PAGE = 1000
CLASSES = 1000
VALIDATION_PER_CLASS = 50
BUCKET = "bench-datasets"
PREFIX = "datasets/imagenet/"


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1


class Channel:
    """The sorted keys of one channel: `<class>/<class>_<i>.JPEG`, generated on demand."""

    def __init__(self, prefix: str, per_class: list[int]) -> None:
        self.prefix = prefix
        self.per_class = per_class
        self.starts = [0]
        for n in per_class:
            self.starts.append(self.starts[-1] + n)
        self.folders = [f"{prefix}n{c:08d}/" for c in range(len(per_class))]

    def key(self, position: int) -> str:
        c = bisect.bisect_right(self.starts, position) - 1
        return f"{self.folders[c]}n{c:08d}_{position - self.starts[c]:07d}.JPEG"

    def range_of(self, prefix: str) -> tuple[int, int]:
        if prefix == self.prefix:
            return 0, self.starts[-1]
        c = self.folders.index(prefix)
        return self.starts[c], self.starts[c + 1]


class LatencyS3:
    def __init__(
        self, train_per_class: list[int], list_ms: float, get_ms: float, mb_per_s: float, parse: str = "raw"
    ) -> None:
        self.calls = Calls()
        self.parser = (
            None if parse == "none" else RestXMLParser(timestamp_parser=(lambda v: v) if parse == "raw" else None)
        )
        self.shape = (
            botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2").output_shape
        )
        self.list_s, self.get_s, self.bytes_per_s = list_ms / 1000, get_ms / 1000, mb_per_s * 1e6
        self.channels = {
            f"{PREFIX}train/": Channel(f"{PREFIX}train/", train_per_class),
            f"{PREFIX}validation/": Channel(f"{PREFIX}validation/", [VALIDATION_PER_CLASS] * len(train_per_class)),
        }
        self.objects = {
            f"{PREFIX}manifest.json": json.dumps({"format": "image"}).encode(),
            f"{PREFIX}train_lst/train.lst": self._lst(self.channels[f"{PREFIX}train/"]),
            f"{PREFIX}validation_lst/validation.lst": self._lst(self.channels[f"{PREFIX}validation/"]),
        }

    @staticmethod
    def _lst(channel: Channel) -> bytes:
        out = io.StringIO()
        for c, n in enumerate(channel.per_class):
            for i in range(n):
                out.write(f"{channel.starts[c] + i}\t{c}\tn{c:08d}/n{c:08d}_{i:07d}.JPEG\n")
        return out.getvalue().encode()

    # -- the calls the validation step makes
    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, PaginationConfig: dict[str, int] | None = None, **params: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
        token, seen, limit = None, 0, (PaginationConfig or {}).get("MaxItems")
        while True:
            page = self.list_objects_v2(**params, **({"ContinuationToken": token} if token else {}))
            yield page
            seen += len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
            token = page.get("NextContinuationToken")
            if not token or (limit is not None and seen >= limit):
                return

    def list_objects_v2(  # noqa: N803
        self,
        Bucket: str,
        Prefix: str,
        Delimiter: str = "",
        ContinuationToken: str = "",
        StartAfter: str = "",  # noqa: N803
    ) -> Any:
        self.calls.add("ListObjectsV2")
        time.sleep(self.list_s)
        channel = next((c for p, c in self.channels.items() if Prefix.startswith(p)), None)
        if channel is None:  # a .lst channel: its one object
            keys = [k for k in self.objects if k.startswith(Prefix)]
            return self.page([(k, len(self.objects[k])) for k in keys], [], None)
        if Delimiter and Prefix == channel.prefix:
            start = int(ContinuationToken or 0)
            folders = channel.folders[start : start + PAGE]
            return self.page([], folders, str(start + PAGE) if start + PAGE < len(channel.folders) else None)
        first, end = channel.range_of(Prefix)
        if StartAfter:  # only folder names (no trailing '/') are used here
            first = channel.starts[channel.folders.index(StartAfter + "/")]
        at = int(ContinuationToken) if ContinuationToken else first  # tokens hold the absolute position
        stop = min(end, at + PAGE)
        return self.page([(channel.key(p), 110_000) for p in range(at, stop)], [], str(stop) if stop < end else None)

    def page(self, contents: list[tuple[str, int]], folders: list[str], token: str | None) -> dict[str, Any]:
        """The page as the client hands it over: parsed from S3's XML by botocore, unless parse is none."""
        if self.parser is None:
            page: dict[str, Any] = {"Contents": [{"Key": k, "Size": n} for k, n in contents]}
            page["CommonPrefixes"] = [{"Prefix": f} for f in folders]
        else:
            xml = "".join(
                [
                    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                    f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>{BUCKET}</Name><MaxKeys>{PAGE}</MaxKeys>',
                    f"<IsTruncated>{'true' if token else 'false'}</IsTruncated>",
                    *(
                        f"<Contents><Key>{html.escape(k)}</Key><LastModified>2026-11-28T00:00:00.000Z</LastModified>"
                        f"<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>{n}</Size>"
                        "<StorageClass>STANDARD</StorageClass></Contents>"
                        for k, n in contents
                    ),
                    *(f"<CommonPrefixes><Prefix>{html.escape(f)}</Prefix></CommonPrefixes>" for f in folders),
                    "</ListBucketResult>",
                ]
            )
            page = self.parser.parse({"status_code": 200, "headers": {}, "body": xml.encode()}, self.shape)
        if token:
            page["NextContinuationToken"] = token
        return page

    def get_object(self, Bucket: str, Key: str, VersionId: str = "") -> Any:  # noqa: N803
        self.calls.add("GetObject")
        body = self.objects[Key]
        time.sleep(self.get_s + len(body) / self.bytes_per_s)
        return {"Body": _Body(body)}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for at in range(0, len(self.data), size):
            yield self.data[at : at + size]


def validation_case(images: int, args: argparse.Namespace) -> dict[str, Any]:
    """Two runs: one timed (nothing else attached), one under tracemalloc for the peak."""
    base, extra = divmod(images, CLASSES)
    per_class = [base + (1 if c < extra else 0) for c in range(CLASSES)]
    event = {"detail": {"bucket": {"name": BUCKET}, "object": {"key": f"{PREFIX}manifest.json", "version-id": "v1"}}}
    defaults = TuningSettings.from_mapping({"max_cost_usd": None}, where="bench").to_dict()
    s3 = LatencyS3(per_class, args.list_ms, args.get_ms, args.mb_per_s, args.parse)
    started, cpu = time.perf_counter(), time.process_time()
    run = validate_dataset(event, defaults, s3)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    assert run.data.num_training_samples == images and run.data.num_classes == CLASSES
    traced = LatencyS3(per_class, args.list_ms, args.get_ms, args.mb_per_s, args.parse)
    tracemalloc.start()
    validate_dataset(event, defaults, traced)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "training_images": images,
        "validation_images": VALIDATION_PER_CLASS * CLASSES,
        "lst_mb": round(len(s3.objects[f"{PREFIX}train_lst/train.lst"]) / 1e6, 1),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "peak_mb": round(peak / 1e6, 1),
        "calls": dict(sorted(s3.calls.counts.items())),
        "sequential_list_seconds": round(s3.calls.counts["ListObjectsV2"] * args.list_ms / 1000, 1),
    }


class LatencySageMaker:
    """The calls ChooseBest makes, each after `ms` milliseconds, for one tuning job of `jobs` jobs."""

    def __init__(self, jobs: int, ms: float) -> None:
        self.jobs, self.s, self.calls = jobs, ms / 1000, Calls()

    def _wait(self, name: str) -> None:
        self.calls.add(name)
        time.sleep(self.s)

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> Any:  # noqa: N803
        self._wait("DescribeHyperParameterTuningJob")
        return {
            "HyperParameterTuningJobName": HyperParameterTuningJobName,
            "HyperParameterTuningJobStatus": "Completed",
            "BestTrainingJob": {
                "TrainingJobName": "big-run-0007",
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": {"learning_rate": "0.01"},
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:accuracy", "Value": 0.9},
            },
        }

    def get_paginator(self, operation: str) -> Any:
        return self

    def paginate(self, HyperParameterTuningJobName: str, PaginationConfig: Any = None, **_: Any) -> Any:  # noqa: N803
        for start in range(0, self.jobs, 100):
            self._wait("ListTrainingJobsForHyperParameterTuningJob")
            names = [f"big-run-{i:04d}" for i in range(start, min(self.jobs, start + 100))]
            yield {"TrainingJobSummaries": [{"TrainingJobName": n} for n in names]}

    def describe_training_job(self, TrainingJobName: str) -> Any:  # noqa: N803
        self._wait("DescribeTrainingJob")
        return {
            "TrainingJobName": TrainingJobName,
            "BillableTimeInSeconds": 600,
            "HyperParameters": {"optimizer": "sgd"},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://a/{TrainingJobName}/output/model.tar.gz"},
            "AlgorithmSpecification": {"TrainingImage": "img:1"},
        }


def choose_best_case(jobs: int, ms: float) -> dict[str, Any]:
    sm = LatencySageMaker(jobs, ms)
    started = time.perf_counter()
    result = best_of_run(("big-run",), sm, price_per_hour=1.0)
    seconds = time.perf_counter() - started
    return {
        "training_jobs": jobs,
        "ms_per_call": ms,
        "seconds": round(seconds, 2),
        "billed_jobs": result.bill.billed_jobs if result.bill else None,
        "billing_complete": result.bill.complete if result.bill else None,
        "calls": dict(sorted(sm.calls.counts.items())),
        "sequential_seconds": round(sum(sm.calls.counts.values()) * ms / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1281167", help="training images per case")
    parser.add_argument("--list-ms", type=float, default=75.0)
    parser.add_argument("--get-ms", type=float, default=20.0)
    parser.add_argument("--mb-per-s", type=float, default=100.0)
    parser.add_argument("--parse", choices=("raw", "datetime", "none"), default="raw")
    parser.add_argument("--jobs", type=int, default=750, help="training jobs for the ChooseBest case")
    parser.add_argument("--sagemaker-ms", type=float, default=50.0)
    args = parser.parse_args()
    validation = []
    for size in (int(s) for s in args.sizes.split(",")):
        validation.append(validation_case(size, args))
        print(json.dumps(validation[-1]), flush=True)
    choose = choose_best_case(args.jobs, args.sagemaker_ms)
    print(json.dumps(choose), flush=True)
    RESULTS.mkdir(exist_ok=True)
    command = "python -m bench.scale " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(vars(args).items()))
    (RESULTS / "scale.json").write_text(
        json.dumps({"command": command, "validation": validation, "choose_best": choose}, indent=2) + "\n"
    )
    lines = [
        "# Scale benchmark",
        "",
        f"`{command}` (2 cores; latencies simulated as stated, Python work real).",
        "",
        "| training images | .lst MB | wall s | CPU s | sequential LIST s | peak MB (tracemalloc) | calls |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {v['training_images']:,} | {v['lst_mb']} | {v['seconds']} | {v['cpu_seconds']} | "
            f"{v['sequential_list_seconds']} | "
            f"{v['peak_mb']} | {', '.join(f'{k} {n:,}' for k, n in v['calls'].items())} |"
            for v in validation
        ),
        "",
        "| ChooseBest: training jobs | ms per call | wall s | one after another s | billed jobs | calls |",
        "|---|---|---|---|---|---|",
        f"| {choose['training_jobs']} | {choose['ms_per_call']} | {choose['seconds']} | {choose['sequential_seconds']} "
        f"| {choose['billed_jobs']} ({'complete' if choose['billing_complete'] else 'partial'}) | "
        f"{', '.join(f'{k} {n:,}' for k, n in choose['calls'].items())} |",
        "",
    ]
    (RESULTS / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
