"""Admit and Release as the workflow calls them, on moto's DynamoDB, with SageMaker and Step
Functions fakes held to their API models: who is woken with what, what the ledger holds, and
what a run billed.

The figures are the tests' own: runs of 2 parallel jobs on a capacity of 2, a $10 worst case,
training at the run's recorded $0.736 per hour and the transform at ml.m5.xlarge's $0.23 per hour
(lambdas/pipeline/data/transform-prices.json). Billing rules: training bills
BillableTimeInSeconds; a transform bills "the time interval between TransformStartTime and
TransformEndTime" (DescribeTransformJob, API reference).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import botocore.exceptions
import pytest

from handlers.admit import admit
from handlers.release import release_execution, transform_seconds
from pipeline.aws.errors import AdmissionRefused, MonthlyBudgetExceeded
from pipeline.contract import Cost, DatasetRef, Run, Schedule
from pipeline.governance.admission import Governance
from pipeline.governance.ledger import Ledger
from pipeline.governance.slots import Slots
from pipeline.settings.tuning_settings import TuningSettings
from pipeline.tuning.naming import run_id
from tests.fakes import Fake
from tests.sample_request import DATA, client_error

TABLE, GPU, CPU = "gov", "ml.g4dn.xlarge", "ml.m5.xlarge"
ACCOUNT = "arn:aws:sagemaker:us-east-1:123456789012"
MONTH = "2026-12"


def execution(n: int) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:ic-tuning-dev-tuning:e{n}"


def rid(n: int) -> str:
    """Run n's id, as ValidateDataset names it from its upload (bucket, dataset, version v<n>)."""
    return run_id("ds-bucket", "digits", f"v{n}")


def run_of(n: int, worst_case: float = 10.0) -> Run:
    return Run(
        run_id=rid(n),
        dataset=DatasetRef("ds-bucket", "digits", "datasets/digits/manifest.json", f"v{n}"),
        data=DATA,
        settings=TuningSettings.from_mapping({"instance_type": GPU, "max_parallel_jobs": 2}, where="test"),
        schedule=Schedule(poll_seconds=60, max_tuning_seconds=36_000),
        cost=Cost(worst_case, 0.736, 13.6, "test prices", None),
    )


def event(n: int, phase: str = "training", worst_case: float = 10.0) -> dict[str, Any]:
    return {
        "run": run_of(n, worst_case).to_dict(),
        "phase": phase,
        "execution": execution(n),
        "started": f"2026-12-07T10:00:{n:02d}.000Z",
        "token": f"token-{n}",
    }


class StepFunctions(Fake):
    SERVICE = "stepfunctions"

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        self.sent.append((taskToken, json.loads(output)))
        return {}


class Quotas(Fake):
    SERVICE = "service-quotas"

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def get_paginator(self, operation: str) -> Quotas:
        return self

    def paginate(self, ServiceCode: str) -> list[dict[str, Any]]:  # noqa: N803
        return [{"Quotas": [{"QuotaName": name, "Value": value} for name, value in self.values.items()]}]


class SageMaker(Fake):
    """The account's tuning jobs (name -> status, owner, billed seconds of each training job) and
    at most one transform (status, owner, start, end)."""

    def __init__(self, jobs: dict[str, tuple[str, str, list[int]]], transform: dict[str, Any] | None = None) -> None:
        self.jobs, self.transform = jobs, transform

    def get_paginator(self, operation: str) -> Any:
        return Pages(self, operation)

    def list_tags(self, ResourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        name = ResourceArn.rsplit("/", 1)[1]
        owner = self.transform["owner"] if ":transform-job/" in ResourceArn else self.jobs[name][1]
        return {"Tags": [{"Key": "tuning-pipeline:execution", "Value": owner}]}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        tuning, _, index = TrainingJobName.rpartition("-")
        return {"BillableTimeInSeconds": self.jobs[tuning][2][int(index)]}

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        if self.transform is None or self.transform["name"] != TransformJobName:
            raise client_error("ValidationException")
        t = self.transform
        described = {
            "TransformJobStatus": t["status"],
            "TransformJobArn": f"{ACCOUNT}:transform-job/{TransformJobName}",
            "CreationTime": datetime.fromtimestamp(t["start"] - 30, UTC),
            "TransformStartTime": datetime.fromtimestamp(t["start"], UTC),
        }
        return {**described, **({"TransformEndTime": datetime.fromtimestamp(t["end"], UTC)} if t.get("end") else {})}


class Pages:
    def __init__(self, sm: SageMaker, operation: str) -> None:
        self.sm, self.operation = sm, operation

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        if self.operation == "list_hyper_parameter_tuning_jobs":
            summaries = [
                {
                    "HyperParameterTuningJobName": name,
                    "HyperParameterTuningJobArn": f"{ACCOUNT}:hyper-parameter-tuning-job/{name}",
                    "HyperParameterTuningJobStatus": status,
                }
                for name, (status, _, _) in self.sm.jobs.items()
                if params["NameContains"] in name
            ]
            return [{"HyperParameterTuningJobSummaries": summaries}]
        billed = self.sm.jobs[params["HyperParameterTuningJobName"]][2]
        names = [f"{params['HyperParameterTuningJobName']}-{i:03d}" for i in range(len(billed))]
        return [{"TrainingJobSummaries": [{"TrainingJobName": n} for n in names]}]


GOVERNANCE = Governance(TABLE, {GPU: 2, CPU: 1}, Decimal("100"))
NO_QUOTAS = Quotas({})


def test_the_first_run_is_sent_on_at_once_the_second_waits_and_both_are_reserved(db) -> None:
    sfn = StepFunctions()
    assert admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS) == {"queued_at_position": 0, "limit": 2}
    ((token, output),) = sfn.sent
    assert token == "token-1"
    assert (output["instance_type"], output["slots"], output["limit"]) == (GPU, 2, 2)
    assert output["note"] == (
        f"The quota '{GPU} for training job usage' was not read (Service Quotas lists no such quota): "
        "admitted against the capacity, 2."
    )
    assert admit(event(2), GOVERNANCE, db, sfn, NO_QUOTAS) == {"queued_at_position": 1, "limit": 2}
    assert len(sfn.sent) == 1  # run 2 waits: its token is not sent
    ledger = Ledger(db, TABLE, GOVERNANCE.monthly_budget_usd)
    assert ledger.month(MONTH).reserved == Decimal("20.00")
    facts = ledger.facts(MONTH, execution(2))
    assert facts is not None
    assert (facts["run_id"], facts["price_per_hour_usd"], facts["evaluation_instance_type"]) == (
        rid(2),
        "0.736",
        CPU,
    )
    assert facts["dataset"] == "s3://ds-bucket/datasets/digits/"


def test_each_admission_is_logged_with_the_fields_an_operator_searches_by(db, caplog) -> None:
    # The admission log line (CloudWatch Logs Insights: `filter message = "admission"`) says where
    # the run stands: its phase, instance type, slots and limit, its place in the queue, who went on.
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    caplog.clear()
    admit(event(2), GOVERNANCE, db, sfn, NO_QUOTAS)
    (record,) = [r for r in caplog.records if r.getMessage() == "admission"]
    logged = {k: getattr(record, k) for k in ("phase", "instance_type", "slots", "limit", "queued_at_position")}
    assert logged == {"phase": "training", "instance_type": GPU, "slots": 2, "limit": 2, "queued_at_position": 1}
    assert record.admitted == []  # run 1 holds both slots: nobody went on
    assert record.note == (
        f"The quota '{GPU} for training job usage' was not read (Service Quotas lists no such quota): "
        "admitted against the capacity, 2."
    )
    assert record.levelname == "INFO"


def test_a_retried_admission_of_a_run_already_granted_sends_its_token_again(db) -> None:
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)  # Lambda retried the invocation
    assert [token for token, _ in sfn.sent] == ["token-1", "token-1"]
    assert Ledger(db, TABLE, None).month(MONTH).reserved == Decimal("10.00")  # reserved once


def test_the_evaluation_takes_one_slot_of_its_own_type_and_reserves_nothing_more(db) -> None:
    sfn = StepFunctions()
    assert admit(event(1, "evaluation"), GOVERNANCE, db, sfn, Quotas({f"{CPU} for transform job usage": 4.0})) == {
        "queued_at_position": 0,
        "limit": 1,
    }
    ((_, output),) = sfn.sent
    assert (output["instance_type"], output["slots"], output["note"]) == (CPU, 1, "")
    assert Ledger(db, TABLE, None).month(MONTH).reserved == Decimal("0.00")


def test_admission_refuses_a_phase_it_does_not_know_and_a_run_larger_than_the_limit(db) -> None:
    with pytest.raises(ValueError, match="^Admit: phase must be training or evaluation, got 'tuning'$"):
        admit(event(1, "tuning"), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)
    quota_one = Quotas({f"{GPU} for training job usage": 1.0})
    with pytest.raises(AdmissionRefused, match=r"^the run needs 2 ml.g4dn.xlarge instances at once .* at most 1 may"):
        admit(event(1), GOVERNANCE, db, StepFunctions(), quota_one)
    with pytest.raises(MonthlyBudgetExceeded, match=r"\$100.00"):
        admit(event(2, worst_case=100.01), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)
    assert Slots(db, TABLE, lambda: 0.0).tickets(GPU) == []  # nothing queued by a refused run


def test_release_after_the_tuning_sends_the_next_run_on_and_settles_what_it_billed(db) -> None:
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    admit(event(2), GOVERNANCE, db, sfn, NO_QUOTAS)
    run1 = rid(1)
    sm = SageMaker(
        {
            f"{run1}-sgd": ("Completed", execution(1), [1800, 900]),
            f"{run1}-adam": ("Completed", execution(1), [900]),
            f"{run1}-nag": ("Completed", execution(9), [99_999]),  # a duplicate delivery's job: not billed here
        },
        transform={"name": f"{run1}-test", "status": "Completed", "owner": execution(1), "start": 0, "end": 600},
    )
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": sm}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, settle=True)
    assert result["released"] == [{"instance_type": GPU, "slots": 2, "phase": "training"}]
    assert result["admitted"] == [execution(2)] and [t for t, _ in sfn.sent] == ["token-1", "token-2"]
    # 3,600 s of training at $0.736/h = $0.736; 600 s of transform at $0.23/h = $0.0383: $0.77.
    assert result["billed_usd"] == "0.77" and result["kept"] == []
    month = Ledger(db, TABLE, None).month(MONTH)
    assert (month.billed, month.reserved) == (Decimal("0.77"), Decimal("10.00"))
    # Settled once: the cleanup's second release of the same execution bills nothing more.
    again = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, settle=True)
    assert (again["released"], again["billed_usd"]) == ([], None)


def test_slots_whose_jobs_still_stop_are_kept_and_the_bill_waits_for_them(db) -> None:
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    admit(event(2), GOVERNANCE, db, sfn, NO_QUOTAS)
    sm = SageMaker({rid(1): ("Stopping", execution(1), [60])})
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": sm}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, settle=True)
    assert result == {
        "released": [],
        "billed_usd": None,
        "admitted": [],
        "kept": [{"instance_type": GPU, "slots": 2, "phase": "training"}],
    }
    sm.jobs[rid(1)] = ("Stopped", execution(1), [60])  # the reaper comes back once it stopped
    later = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, settle=True)
    assert later["admitted"] == [execution(2)]
    assert later["billed_usd"] == "0.01"  # 60 s at $0.736/h = $0.0123


def test_a_phase_release_gives_back_that_phase_only_and_settles_nothing(db) -> None:
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    admit(event(1, "evaluation"), GOVERNANCE, db, sfn, NO_QUOTAS)
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": SageMaker({})}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, phase="training")
    assert result["released"] == [{"instance_type": GPU, "slots": 2, "phase": "training"}]
    assert result["kept"] == [{"instance_type": CPU, "slots": 1, "phase": "evaluation"}]
    assert result["billed_usd"] is None
    assert Ledger(db, TABLE, None).month(MONTH).reserved == Decimal("10.00")


class NotFound(SageMaker):
    """An account whose DescribeTransformJob answers `code` for every name."""

    def __init__(self, code: str) -> None:
        super().__init__({})
        self.code = code

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        raise client_error(self.code)


@pytest.mark.parametrize(
    ("status", "owner", "kept"),
    [
        ("InProgress", 1, True),  # this execution's transform runs: its instance is not free
        ("Stopping", 1, True),
        ("Completed", 1, False),
        ("Stopped", 1, False),
        ("InProgress", 2, False),  # the same name started by another execution of the upload: not ours
    ],
)
def test_an_evaluation_slot_is_kept_while_this_executions_transform_runs(
    db, status: str, owner: int, kept: bool
) -> None:
    sfn = StepFunctions()
    admit(event(1, "evaluation"), GOVERNANCE, db, sfn, NO_QUOTAS)
    transform = {"name": f"{rid(1)}-test", "status": status, "owner": execution(owner), "start": 1000}
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": SageMaker({}, transform)}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, phase="evaluation")
    lease = [{"instance_type": CPU, "slots": 1, "phase": "evaluation"}]
    assert (result["kept"], result["released"]) == ((lease, []) if kept else ([], lease))


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_an_evaluation_slot_whose_transform_never_started_is_given_back(db, code: str) -> None:
    # DescribeTransformJob of a name never created: ValidationException (what SageMaker answers),
    # or ResourceNotFound (what some SDK versions model); the slot is free either way.
    sfn = StepFunctions()
    admit(event(1, "evaluation"), GOVERNANCE, db, sfn, NO_QUOTAS)
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": NotFound(code)}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, phase="evaluation")
    assert result["released"] == [{"instance_type": CPU, "slots": 1, "phase": "evaluation"}]


def test_an_evaluation_slot_is_not_given_back_on_a_guess(db) -> None:
    # Throttled while asking whether the transform runs: the release fails to be retried, the slot kept.
    from pipeline.aws.errors import TransientAwsError

    sfn = StepFunctions()
    admit(event(1, "evaluation"), GOVERNANCE, db, sfn, NO_QUOTAS)
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": NotFound("ThrottlingException")}
    with pytest.raises(TransientAwsError):
        release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, phase="evaluation")
    assert [t.execution for t in Slots(db, TABLE, time.time).tickets(CPU)] == [execution(1)]


def test_a_transform_bills_from_its_start_to_its_end_or_to_now_and_only_its_owners() -> None:
    name, owner = f"{rid(1)}-test", execution(1)
    ended = SageMaker({}, {"name": name, "status": "Completed", "owner": owner, "start": 1000, "end": 1600})
    assert transform_seconds(ended, rid(1), owner, now=9999.0) == 600.0
    running = SageMaker({}, {"name": name, "status": "InProgress", "owner": owner, "start": 1000})
    assert transform_seconds(running, rid(1), owner, now=1250.0) == 250.0
    assert transform_seconds(running, rid(1), execution(2), now=1250.0) == 0.0  # another's
    assert transform_seconds(SageMaker({}), rid(1), owner, now=1250.0) == 0.0  # never started


def test_a_run_bills_its_training_and_transform_at_the_prices_its_reservation_recorded() -> None:
    from handlers.release import run_billed

    # 100 h of training at $0.736/h = $73.60; 100 h of ml.m5.xlarge transform at $0.23/h = $23.00.
    facts = {"run_id": rid(1), "price_per_hour_usd": "0.736", "evaluation_instance_type": CPU}
    transform = {"name": f"{rid(1)}-test", "status": "Completed", "owner": execution(1), "start": 1000, "end": 361_000}
    sm = SageMaker({f"{rid(1)}-sgd": ("Completed", execution(1), [300_000, 60_000])}, transform)
    assert run_billed(sm, facts, execution(1), now=999_999.0) == Decimal("96.60")
    # A transform still running (or ended without an end time) bills up to now.
    transform.pop("end")
    assert run_billed(sm, facts, execution(1), now=37_000.0) == Decimal("75.90")  # $73.60 + 10 h x $0.23


class NotStarted(SageMaker):
    """A transform created but not started yet: DescribeTransformJob gives no TransformStartTime."""

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803
        described = super().describe_transform_job(TransformJobName)
        return {k: v for k, v in described.items() if k != "TransformStartTime"}


def test_a_transform_not_started_bills_from_its_creation_and_one_never_created_nothing() -> None:
    transform = {"name": f"{rid(1)}-test", "status": "InProgress", "owner": execution(1), "start": 1000}
    assert transform_seconds(NotStarted({}, transform), rid(1), execution(1), now=1250.0) == 280.0  # created at 970
    assert transform_seconds(NotFound("ResourceNotFound"), rid(1), execution(1), now=1250.0) == 0.0
    with pytest.raises(botocore.exceptions.ClientError):
        transform_seconds(NotFound("AccessDeniedException"), rid(1), execution(1), now=1250.0)


def test_only_this_executions_running_jobs_count_whatever_the_listing_order() -> None:
    from handlers.release import owned_tuning_jobs

    jobs = {
        f"{rid(1)}-sgd": ("Completed", execution(1), [60]),  # listed first, no longer running
        f"{rid(1)}-adam": ("InProgress", execution(1), [60]),
        f"{rid(1)}-nag": ("Stopping", execution(1), [60]),
        f"{rid(1)}-rmsprop": ("InProgress", execution(2), [60]),  # a duplicate delivery's
        f"{rid(1)}0-sgd": ("InProgress", execution(1), [60]),  # another run whose id starts the same
    }
    sm = SageMaker(jobs)
    assert owned_tuning_jobs(sm, rid(1), execution(1), running=True) == [f"{rid(1)}-adam", f"{rid(1)}-nag"]
    assert owned_tuning_jobs(sm, rid(1), execution(1)) == [f"{rid(1)}-sgd", f"{rid(1)}-adam", f"{rid(1)}-nag"]


def test_a_release_settles_only_when_asked_and_only_a_run_that_reserved(db) -> None:
    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": SageMaker({})}
    result = release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients)
    assert (result["released"], result["billed_usd"]) == (
        [{"instance_type": GPU, "slots": 2, "phase": "training"}],
        None,
    )
    assert Ledger(db, TABLE, None).facts(MONTH, execution(1))["state"] == "reserved"  # not settled: not asked
    # An execution that never reserved (refused before admission): nothing to settle, no error.
    never = release_execution(execution(7), "2026-12-07T10:00:07.000Z", GOVERNANCE, clients, settle=True)
    assert never == {"released": [], "billed_usd": None, "admitted": [], "kept": []}


# ---------------------------------------------------------------------- the cleanup and the reaper


class Account(SageMaker):
    """What the cleanup also calls: listing by status, stopping, the transforms and the model."""

    def __init__(self, *args: Any, denied: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopped: list[str] = []
        self.denied = denied  # a run whose jobs this role may not list

    def get_paginator(self, operation: str) -> Any:
        pages = super().get_paginator(operation)
        denied = self.denied

        class Checked:
            def paginate(self, **params: Any) -> Any:
                if denied and params.get("NameContains") == denied:
                    raise client_error("AccessDeniedException")
                return pages.paginate(**params)

        return Checked()

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:  # noqa: N803
        status, owner, billed = self.jobs[HyperParameterTuningJobName]
        self.jobs[HyperParameterTuningJobName] = ("Stopped", owner, billed)  # stops at once, for the test
        self.stopped.append(HyperParameterTuningJobName)
        return {}

    def list_transform_jobs(self, **params: Any) -> dict[str, Any]:
        return {"TransformJobSummaries": []}

    def describe_model(self, ModelName: str) -> dict[str, Any]:  # noqa: N803
        error = client_error("ValidationException")
        error.response["Error"]["Message"] = f"Could not find model {ModelName}."
        raise error


class Executions(StepFunctions):
    def __init__(self, status: dict[str, str]) -> None:
        super().__init__()
        self.status = status  # execution -> RUNNING, SUCCEEDED...; absent: it does not exist

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        if executionArn not in self.status:
            raise client_error("ExecutionDoesNotExist")
        return {"status": self.status[executionArn]}


@pytest.fixture
def deployed(db, monkeypatch):
    """The cleanup function's environment and clients, as the stack configures them."""
    from pipeline.aws import clients

    monkeypatch.setenv("GOVERNANCE_TABLE", TABLE)
    monkeypatch.setenv("CAPACITY", json.dumps({GPU: 2, CPU: 1}))
    monkeypatch.setenv("MONTHLY_BUDGET_USD", "100")
    services: dict[str, Any] = {"dynamodb": db}
    monkeypatch.setattr(clients, "client", lambda service: services[service])
    return services


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "stop-orphans", 256, "id"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stop-orphans"


def test_an_aborted_run_is_stopped_released_and_settled_by_its_end_event(deployed, db) -> None:
    from handlers import stop_orphans

    admit(event(1), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)
    admit(event(2), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)  # waits behind run 1
    run1 = rid(1)
    sm = Account({run1: ("InProgress", execution(1), [3600])})
    sfn = Executions({execution(1): "ABORTED", execution(2): "RUNNING"})
    deployed.update(sagemaker=sm, stepfunctions=sfn)
    detail = {
        "executionArn": execution(1),
        "status": "ABORTED",
        "startDate": 1796637601000,  # 2026-12-07T10:00:01Z, in milliseconds as EventBridge sends it
        "input": json.dumps(
            {
                "detail": {
                    "bucket": {"name": "ds-bucket"},
                    "object": {"key": "datasets/digits/manifest.json", "version-id": "v1"},
                }
            }
        ),
    }
    result = stop_orphans.handler(
        {"detail-type": "Step Functions Execution Status Change", "detail": detail}, Context()
    )
    assert sm.stopped == [run1] and result["stopped"] == [run1]
    assert result["released"] == [{"instance_type": GPU, "slots": 2, "phase": "training"}]
    assert result["admitted"] == [execution(2)] and [t for t, _ in sfn.sent] == ["token-2"]
    assert result["billed_usd"] == "0.74"  # 3,600 s at $0.736/h


def test_the_reaper_frees_what_ended_executions_hold_this_month_or_last_and_publishes_the_queue(
    deployed, db, capsys
) -> None:
    from handlers.stop_orphans import reap

    admit(event(1), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)  # holds both slots; its end event was lost
    admit(event(2), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)  # still running, queued behind it
    admit(event(4), GOVERNANCE, db, StepFunctions(), NO_QUOTAS)  # still running, queued behind run 2
    facts = {"run_id": rid(3), "dataset": "s3://ds-bucket/datasets/digits/", "price_per_hour_usd": "0.736"}
    # Run 3 ended in December without its cleanup; its execution has since been deleted.
    Ledger(db, TABLE, None).reserve(MONTH, execution(3), Decimal("5.00"), {**facts, "evaluation_instance_type": CPU})
    run5 = {**facts, "run_id": rid(5), "evaluation_instance_type": CPU}  # ended too; SageMaker denies its listing
    Ledger(db, TABLE, None).reserve(MONTH, execution(5), Decimal("1.00"), run5)
    sm = Account({rid(1): ("Completed", execution(1), [1800])}, denied=rid(5))
    sfn = Executions({execution(1): "SUCCEEDED", execution(2): "RUNNING", execution(4): "RUNNING"})
    deployed.update(sagemaker=sm, stepfunctions=sfn)
    now = datetime(2027, 1, 2, 9, 0, tzinfo=UTC).timestamp()  # January: December is last month
    result = reap(GOVERNANCE, now)
    assert result["reaped"] == [execution(1), execution(3), execution(5)]  # not the running ones
    (broken,) = [r for r in result["results"] if "error" in r]  # run 5's cleanup failed; the others went on
    assert broken["execution"] == execution(5) and "AccessDeniedException" in broken["error"]
    assert [t for t, _ in sfn.sent] == ["token-2"]  # run 4 still waits for run 2's slots
    december = Ledger(db, TABLE, None).month(MONTH)
    # Run 1: 1,800 s at $0.736/h = $0.368 -> $0.37; run 3 billed nothing. Runs 2, 4 and 5 stay reserved.
    assert (december.billed, december.reserved) == (Decimal("0.37"), Decimal("21.00"))
    metrics = {
        (m["InstanceType"], name): m[name]
        for m in (json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"'))
        for name in ("SlotsInUse", "QueueDepth", "OldestQueuedSeconds")
        if name in m
    }
    # Published before the cleanups (so a failing one cannot silence the alarm): run 1 still held both.
    assert metrics[(GPU, "SlotsInUse")] == [2.0] and metrics[(GPU, "QueueDepth")] == [2.0]
    assert metrics[(CPU, "SlotsInUse")] == [0.0] and metrics[(CPU, "OldestQueuedSeconds")] == [0.0]
    assert metrics[(GPU, "OldestQueuedSeconds")][0] >= now - time.time()  # run 4, queued before this moment


def test_a_bill_that_could_not_be_read_whole_is_not_settled_but_tried_again(db) -> None:
    from pipeline.aws.errors import TransientAwsError

    class Throttled(SageMaker):
        def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
            if TrainingJobName.endswith("-001"):
                raise client_error("ThrottlingException")
            return super().describe_training_job(TrainingJobName)

    sfn = StepFunctions()
    admit(event(1), GOVERNANCE, db, sfn, NO_QUOTAS)
    sm = Throttled({rid(1): ("Completed", execution(1), [1800, 1800])})
    clients = {"dynamodb": db, "stepfunctions": sfn, "sagemaker": sm}
    with pytest.raises(TransientAwsError, match="1 of 2 jobs read"):
        release_execution(execution(1), "2026-12-07T10:00:01.000Z", GOVERNANCE, clients, settle=True)
    month = Ledger(db, TABLE, None).month(MONTH)
    assert (month.billed, month.reserved) == (Decimal("0.00"), Decimal("10.00"))  # still reserved: not settled at $0.37


def test_a_spot_run_is_admitted_against_the_spot_quota(db) -> None:
    spot = event(1)
    spot["run"]["settings"] = {**spot["run"]["settings"], "use_spot": True, "max_wait_seconds": 72_000}
    quotas = Quotas({f"{GPU} for training job usage": 4.0, f"{GPU} for spot training job usage": 1.0})
    with pytest.raises(AdmissionRefused, match=f"above the account's quota '{GPU} for spot training job usage', 1"):
        admit(spot, GOVERNANCE, db, StepFunctions(), quotas)
