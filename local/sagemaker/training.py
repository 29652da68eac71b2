"""The local SageMaker's training jobs: the search that asks for them, each one's training on the
CPU and its DescribeTrainingJob, and the channels it reads from local S3 (each fetched once per run, FETCH_WORKERS objects at a time).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import optuna
import torch

from local.sagemaker import search, trainer
from local.sagemaker.base import ApiError
from local.sagemaker.tuning import TrainingJob, TuningJob, TuningJobs, reservation, usage

# Objects read side by side when a channel is fetched (boto3 clients are thread-safe), and how
# often the fetch reports its progress.
FETCH_WORKERS = 16
FETCH_EVENT_EVERY = 50

BILLING_SECONDS_MINIMUM = 1

logger = logging.getLogger("local.sagemaker")
optuna.logging.set_verbosity(optuna.logging.WARNING)


class TrainingRuns(TuningJobs):
    """Mixed into LocalSageMaker: runs the tuning jobs TuningJobs creates."""

    _data_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]
    # index uri (.lst or augmented manifest) -> its (image uri, label) items and every image's bytes
    _fetched: dict[str, Future[tuple[list[tuple[str, int]], dict[str, bytes]]]]
    # Training failures to simulate: a predicate on the job's hyperparameters -> reason.
    training_faults: list[tuple[Callable[[dict[str, str]], bool], str]]

    def op_DescribeTrainingJob(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            t = self.training_jobs.get(p["TrainingJobName"])
            if t is None:
                raise ApiError(
                    "ValidationException", f"Requested resource not found: training job {p['TrainingJobName']}"
                )
            return self._describe_training(t)

    def _describe_training(self, t: TrainingJob) -> dict[str, Any]:
        d = t.request
        hyperparameters = {**t.definition.static, **t.tuned}
        out: dict[str, Any] = {
            "TrainingJobName": t.name,
            "TrainingJobArn": self.arn("training-job", t.name),
            "TuningJobArn": self.arn("hyper-parameter-tuning-job", t.tuning_job),
            "ModelArtifacts": {
                "S3ModelArtifacts": t.model_uri
                or f"{d['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{t.name}/output/model.tar.gz"
            },
            "TrainingJobStatus": t.status,
            "SecondaryStatus": t.secondary,
            "HyperParameters": hyperparameters,
            "AlgorithmSpecification": d["AlgorithmSpecification"],
            "RoleArn": d["RoleArn"],
            "InputDataConfig": d["InputDataConfig"],
            "OutputDataConfig": d["OutputDataConfig"],
            "ResourceConfig": d["ResourceConfig"],
            "StoppingCondition": d["StoppingCondition"],
            "CreationTime": t.created,
            "LastModifiedTime": t.ended or time.time(),
            "EnableNetworkIsolation": d.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": d.get("EnableInterContainerTrafficEncryption", False),
            "EnableManagedSpotTraining": d.get("EnableManagedSpotTraining", False),
            "FinalMetricDataList": [
                {"MetricName": "validation:accuracy", "Value": t.objective, "Timestamp": t.ended or time.time()}
            ]
            if t.objective is not None
            else [],
        }
        if t.started:
            out["TrainingStartTime"] = t.started
        if t.ended and t.started:
            out["TrainingEndTime"] = t.ended
            seconds = max(BILLING_SECONDS_MINIMUM, int(round(t.ended - t.started)))
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        if t.failure_reason:
            out["FailureReason"] = t.failure_reason[:1024]
        if "CheckpointConfig" in d:
            out["CheckpointConfig"] = d["CheckpointConfig"]
        return out

    def _read_s3(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()

    def _list_s3(self, uri: str) -> list[str]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        keys = []
        for page in self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def _channel(
        self, request: dict[str, Any], split: str, hp: trainer.Hyperparameters
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A channel's images and labels, decoded for these hyperparameters: from an augmented
        manifest (S3DataType AugmentedManifestFile) or from image files and their `.lst`."""
        sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"]}
        if split not in sources:
            raise trainer.AlgorithmError(f"no {split} channel")
        source = sources[split]
        if source["S3DataType"] == "AugmentedManifestFile":
            index_uri, names = source["S3Uri"], list(source.get("AttributeNames", []))

            def items(text: str) -> list[tuple[str, int]]:
                return trainer.manifest_items(text, index_uri, names)
        else:
            index_uri, channel_uri = self._lst_of(sources, split), source["S3Uri"]

            def items(text: str) -> list[tuple[str, int]]:
                return trainer.lst_items(text, index_uri, channel_uri)

        cache_key = (index_uri, f"{hp.image_shape}{hp.resize}")
        with self.lock:
            cached = self._data_cache.get(cache_key)
        if cached is None:
            listed, images = self._fetch(index_uri, items)
            cached = trainer.decode_images(images.__getitem__, listed, hp)
            with self.lock:
                self._data_cache[cache_key] = cached
        return cached

    def _lst_of(self, sources: dict[str, Any], split: str) -> str:
        if f"{split}_lst" not in sources:
            raise trainer.AlgorithmError(f"image files need a {split}_lst channel with their .lst file")
        prefix = sources[f"{split}_lst"]["S3Uri"]
        lst_keys = [k for k in self._list_s3(prefix) if k.endswith(".lst")]
        if not lst_keys:
            raise trainer.AlgorithmError(f'No S3 objects found under S3 URL "{prefix}"')
        return f"s3://{prefix.removeprefix('s3://').partition('/')[0]}/{lst_keys[0]}"

    def _fetch(
        self, index_uri: str, items: Callable[[str], list[tuple[str, int]]]
    ) -> tuple[list[tuple[str, int]], dict[str, bytes]]:
        """A channel's index (a .lst or an augmented manifest) and every image it names, read once
        for all the run's training jobs, FETCH_WORKERS objects at a time; the jobs that need it
        meanwhile wait for the same fetch."""
        with self.lock:
            pending = self._fetched.get(index_uri)
            mine = pending is None
            if pending is None:
                pending = self._fetched[index_uri] = Future()
        if not mine:
            return pending.result()
        try:
            s3 = self._s3()  # one client for the whole fetch, shared by the threads

            def read(uri: str) -> bytes:
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

            listed = items(read(index_uri).decode())
            uris = sorted({uri for uri, _ in listed})
            images: dict[str, bytes] = {}
            with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="fetch") as pool:
                for done, (uri, body) in enumerate(zip(uris, pool.map(read, uris), strict=True), start=1):
                    images[uri] = body
                    if done % FETCH_EVENT_EVERY == 0 or done == len(uris):
                        self.emit("fetch", channel=index_uri, done=done, total=len(uris))
        except BaseException as exc:
            with self.lock:
                del self._fetched[index_uri]  # a later job tries again
            pending.set_exception(exc)
            raise
        pending.set_result((listed, images))
        return listed, images

    def _run_tuning(self, job: TuningJob) -> None:
        try:
            self._search(job)
        except Exception as exc:  # the tuning job fails; the workflow reads FailureReason
            logger.exception("tuning job %s failed", job.name)
            with self.lock:
                job.failure_reason = f"{type(exc).__name__}: {exc}"
        with self.lock:
            if job.stop.is_set():
                job.status = "Stopped"
            elif job.failure_reason:
                job.status = "Failed"
            elif not any(t.status == "Completed" for t in job.jobs):
                job.status = "Failed"
                reasons = {t.failure_reason for t in job.jobs if t.failure_reason}
                job.failure_reason = "All training jobs failed. " + "; ".join(sorted(reasons))[:900]
            else:
                job.status = "Completed"
            job.ended = time.time()
        instance_type, kind, delta = reservation(job.request)
        self.quotas.unreserve(instance_type, kind, delta)
        self.emit("tuning_ended", job=job.name, status=job.status, reason=job.failure_reason)

    def _search(self, job: TuningJob) -> None:
        config = job.request["HyperParameterTuningJobConfig"]
        limits = config["ResourceLimits"]
        max_jobs, parallel = limits["MaxNumberOfTrainingJobs"], limits["MaxParallelTrainingJobs"]
        if config["Strategy"] == "Grid":
            max_jobs = min(max_jobs, search.grid_size(job.request))
        criteria = config.get("TuningJobCompletionCriteria", {})
        # Reproducible: the seed depends on the service's seed and the job's position, not on
        # its name (which carries the manifest's random version id).
        with self.lock:
            position = list(self.tuning_jobs).index(job.name)
        seed = int(hashlib.sha256(f"{self.seed}:{position}".encode()).hexdigest()[:8], 16)
        study = search.make_study(job.request, seed)
        definitions = search.definitions_of(job.request)
        search.warm_start(study, definitions, self.parent_observations(job.request))
        running: dict[Future[None], tuple[optuna.Trial, TrainingJob]] = {}
        best, since_improvement, launched = None, 0, 0
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"train-{job.name}") as pool:
            while True:
                while (
                    launched < max_jobs
                    and len(running) < parallel
                    and not job.stop.is_set()
                    and not job.completion_reason
                ):
                    trial = study.ask()
                    definition, tuned = search.sample(trial, definitions)
                    launched += 1
                    t = TrainingJob(
                        name=f"{job.name}-{launched:03d}-{uuid.uuid4().hex[:8]}",
                        tuning_job=job.name,
                        definition=definition,
                        tuned=tuned,
                        request=self._definition_request(job.request, definition),
                    )
                    with self.lock:
                        job.jobs.append(t)
                        self.training_jobs[t.name] = t
                    running[pool.submit(self._train, t, trial, seed + launched)] = (trial, t)
                if not running:
                    break
                done = next(iter(f for f in list(running) if f.done()), None)
                if done is None:
                    time.sleep(0.05)
                    continue
                trial, t = running.pop(done)
                if t.status == "Completed" and t.objective is not None:
                    study.tell(trial, t.objective)
                    if best is None or t.objective > best:
                        best, since_improvement = t.objective, 0
                    else:
                        since_improvement += 1
                elif t.status == "Stopped" and t.history and not job.stop.is_set():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                target = criteria.get("TargetObjectiveMetricValue")
                patience = criteria.get("BestObjectiveNotImproving", {}).get("MaxNumberOfTrainingJobsNotImproving")
                if target is not None and best is not None and best >= target:
                    job.completion_reason = f"reached the target objective {target}"
                elif patience and since_improvement >= patience:
                    job.completion_reason = f"{patience} training jobs without improvement"

    def _definition_request(self, request: dict[str, Any], definition: search.Definition) -> dict[str, Any]:
        if "TrainingJobDefinitions" in request:
            return next(d for d in request["TrainingJobDefinitions"] if d["DefinitionName"] == definition.name)
        return request["TrainingJobDefinition"]

    def _train(self, t: TrainingJob, trial: optuna.Trial, seed: int) -> None:
        torch.set_num_threads(1)
        resources = t.request["ResourceConfig"]
        self.quotas.start(resources["InstanceType"], usage(t.request), resources["InstanceCount"])
        t.started = time.time()
        t.secondary = "Training"
        hp_strings = {**t.definition.static, **t.tuned}
        self.emit(
            "training_started",
            job=t.name,
            tuning_job=t.tuning_job,
            hyperparameters=t.tuned,
            definition=t.definition.name,
        )
        runtime_limit = t.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        try:
            for matches, reason in self.training_faults:
                if matches(hp_strings):
                    raise trainer.AlgorithmError(reason)
            hp = trainer.Hyperparameters.parse(hp_strings)
            train_data = self._channel(t.request, "train", hp)
            validation_data = self._channel(t.request, "validation", hp)

            def on_epoch(epoch: int, accuracy: float) -> bool:
                self.emit("epoch", job=t.name, epoch=epoch, accuracy=accuracy)
                with self.lock:
                    t.history.append(accuracy)
                if time.time() - (t.started or 0) > runtime_limit:
                    t.stop.set()
                    return False
                trial.report(accuracy, epoch + 1)
                if trial.should_prune():
                    t.secondary = "Stopped"  # early stopping: SageMaker marks the job Stopped
                    return False
                return True

            model, history = trainer.train(
                hp,
                train_data,
                validation_data,
                seed=seed,
                on_epoch=on_epoch,
                stop=t.stop,
                log=lambda line: logger.info("%s %s", t.name, line),
            )
            output = t.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            t.model_uri = f"{output}/{t.name}/output/model.tar.gz"
            bucket, _, key = t.model_uri.removeprefix("s3://").partition("/")
            mean = train_data[0].mean(dim=(0, 2, 3))
            self._s3().put_object(Bucket=bucket, Key=key, Body=trainer.model_archive(model, hp, history, mean))
            with self.lock:
                t.status = "Stopped" if t.secondary == "Stopped" else "Completed"
                t.secondary = "Completed" if t.status == "Completed" else "Stopped"
        except trainer.Stopped:
            with self.lock:
                t.status = t.secondary = "Stopped"
        except trainer.AlgorithmError as exc:
            with self.lock:
                t.status, t.secondary = "Failed", "Failed"
                t.failure_reason = f"AlgorithmError: {exc}"
        except Exception as exc:
            logger.exception("training job %s failed", t.name)
            with self.lock:
                t.status, t.secondary = "Failed", "Failed"
                t.failure_reason = f"ClientError: {type(exc).__name__}: {exc}"
        t.ended = time.time()
        self.quotas.stop(resources["InstanceType"], usage(t.request), resources["InstanceCount"])
        self.emit("training_ended", job=t.name, status=t.status, accuracy=t.objective, reason=t.failure_reason)
