"""Governance across runs, on moto's DynamoDB: slots leased with conditional writes, a queue served
in order, runs woken by their task tokens, and the month's ledger.

The numbers are the tests' own (capacities, costs); the rules come from the governance issue:
never more than the limit held, first come first served, a run that no longer waits passes its
slots on, a worst case that fits exactly is accepted and one cent more is refused.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.aws.errors import AdmissionRefused, MonthlyBudgetExceeded
from pipeline.governance.admission import limit_for, pump_all, quota_name
from pipeline.governance.ledger import Ledger
from pipeline.governance.slots import HELD, QUEUED, Slots, Ticket
from tests.fakes import Fake

TABLE = "gov"
GPU = "ml.g4dn.xlarge"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Tokens:
    """SendTaskSuccess's stand-in: records who was woken; tokens in `gone` answer InvalidToken."""

    def __init__(self, gone: set[str] = frozenset()) -> None:
        self.sent: list[str] = []
        self.gone = set(gone)

    def __call__(self, ticket: Ticket) -> bool:
        if ticket.token in self.gone:
            return False
        self.sent.append(ticket.token)
        return True


def ticket(n: int, slots: int = 2, phase: str = "training") -> Ticket:
    """Run n, started at second n of the day: the queue's order is n's order."""
    return Ticket(GPU, slots, f"arn:exec:{n}", phase, f"2026-12-07T00:00:{n:02d}Z", run_id=f"run{n}", token=f"tok{n}")


def states(slots: Slots) -> dict[str, str]:
    return {t.execution: t.state for t in slots.tickets(GPU)}


def test_runs_wait_in_arrival_order_and_each_release_sends_the_next_one_on(db) -> None:
    slots, woken = Slots(db, TABLE, Clock()), Tokens()
    # Enqueued out of order: the queue follows the executions' start times, not the calls.
    for n in (3, 1, 2):
        slots.enqueue(ticket(n))
    admitted = slots.pump(GPU, 2, woken)
    assert [t.execution for t in admitted] == ["arn:exec:1"] and woken.sent == ["tok1"]
    assert states(slots) == {"arn:exec:1": HELD, "arn:exec:2": QUEUED, "arn:exec:3": QUEUED}
    assert slots.pool(GPU)[0] == 2

    slots.release("arn:exec:1", [GPU])
    slots.pump(GPU, 2, woken)
    assert woken.sent == ["tok1", "tok2"]
    assert states(slots) == {"arn:exec:2": HELD, "arn:exec:3": QUEUED}

    slots.release("arn:exec:2", [GPU])
    slots.pump(GPU, 2, woken)
    slots.release("arn:exec:3", [GPU])
    assert woken.sent == ["tok1", "tok2", "tok3"]
    assert slots.tickets(GPU) == [] and slots.pool(GPU)[0] == 0  # nothing left behind


def test_a_large_head_is_not_overtaken_by_smaller_runs_behind_it(db) -> None:
    slots, woken = Slots(db, TABLE, Clock()), Tokens()
    slots.enqueue(ticket(1, slots=2))
    slots.pump(GPU, 3, woken)
    slots.enqueue(ticket(2, slots=2))  # does not fit beside run 1 (2 + 2 > 3)
    slots.enqueue(ticket(3, slots=1))  # would fit, but waits behind run 2
    slots.pump(GPU, 3, woken)
    assert woken.sent == ["tok1"]
    assert states(slots)["arn:exec:3"] == QUEUED


def test_two_runs_racing_for_the_last_slot_exactly_one_gets_it(db) -> None:
    """Both read the pool (one slot of three free) before either writes, as two runs starting in
    the same second do; the conditional write lets one through and refuses the other."""
    first = Slots(db, TABLE, Clock())
    first.enqueue(ticket(1, slots=2))
    first.pump(GPU, 3, Tokens())
    both_read = threading.Barrier(2)
    lock = threading.Lock()

    class SameSecond:
        """The table's client, writing only once both runs have made their decision."""

        def __getattr__(self, name: str) -> Any:
            return getattr(db, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            both_read.wait(timeout=10)
            with lock:  # DynamoDB applies transactions one at a time
                return db.transact_write_items(**kwargs)

    racers = [Slots(SameSecond(), TABLE, Clock()) for _ in range(2)]
    racers[0].enqueue(ticket(2, slots=1))
    racers[1].enqueue(ticket(3, slots=1))
    # Each racer pumps its own ticket only (one attempt): the head each one reads is its own.
    results: dict[int, bool] = {}

    def race(i: int, t: Ticket) -> None:
        results[i] = racers[i].grant(t, 3)

    threads = [threading.Thread(target=race, args=(i, ticket(n, slots=1))) for i, n in ((0, 2), (1, 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, True]
    assert first.pool(GPU)[0] == 3
    held = [t for t in first.tickets(GPU) if t.state == HELD]
    assert sum(t.slots for t in held) == 3 and len(held) == 2


def test_a_run_that_no_longer_waits_passes_its_slots_to_the_next(db) -> None:
    slots = Slots(db, TABLE, Clock())
    slots.enqueue(ticket(1))
    slots.enqueue(ticket(2))
    woken = Tokens(gone={"tok1"})  # run 1 was aborted while queued: its token is no longer valid
    admitted = slots.pump(GPU, 2, woken)
    assert [t.execution for t in admitted] == ["arn:exec:2"] and woken.sent == ["tok2"]
    assert states(slots) == {"arn:exec:2": HELD}
    assert slots.pool(GPU)[0] == 2


def test_a_queued_ticket_given_back_changes_no_slot_count(db) -> None:
    slots = Slots(db, TABLE, Clock())
    slots.enqueue(ticket(1))
    slots.enqueue(ticket(2))
    slots.pump(GPU, 2, Tokens())
    released = slots.release("arn:exec:2", [GPU])  # aborted while queued
    assert [(t.execution, t.state) for t in released] == [("arn:exec:2", QUEUED)]
    assert slots.pool(GPU)[0] == 2 and states(slots) == {"arn:exec:1": HELD}


def test_a_retried_admission_keeps_one_ticket_with_the_new_token_and_its_place(db) -> None:
    clock = Clock()
    slots = Slots(db, TABLE, clock)
    slots.enqueue(ticket(1))
    first = slots.enqueue(ticket(2))
    clock.now += 30
    retried = slots.enqueue(Ticket(**{**ticket(2).__dict__, "token": "tok2-retry"}))
    assert retried.token == "tok2-retry" and retried.enqueued_at == first.enqueued_at == 1_000.0
    assert len(slots.tickets(GPU)) == 2
    woken = Tokens()
    slots.pump(GPU, 4, woken)
    assert woken.sent == ["tok1", "tok2-retry"]


def test_release_of_one_phase_leaves_the_other(db) -> None:
    slots = Slots(db, TABLE, Clock())
    slots.enqueue(ticket(1, slots=2, phase="training"))
    slots.enqueue(Ticket("ml.m5.xlarge", 1, "arn:exec:1", "evaluation", "2026-12-07T00:00:01Z", token="e1"))
    pump_all(slots, {GPU: 2, "ml.m5.xlarge": 1}, {GPU, "ml.m5.xlarge"}, Tokens())
    slots.release("arn:exec:1", [GPU, "ml.m5.xlarge"], phase="training")
    assert slots.pool(GPU)[0] == 0 and slots.pool("ml.m5.xlarge")[0] == 1


# ---------------------------------------------------------------------- capacity and quota


class Quotas(Fake):
    SERVICE = "service-quotas"

    def __init__(self, quotas: dict[str, float] | None = None, error: str | None = None) -> None:
        self.quotas, self.error = quotas or {}, error

    def get_paginator(self, operation: str) -> Quotas:
        assert operation == "list_service_quotas"
        return self

    def paginate(self, ServiceCode: str) -> list[dict[str, Any]]:  # noqa: N803
        assert ServiceCode == "sagemaker"
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "ListServiceQuotas")
        return [{"Quotas": [{"QuotaName": k, "Value": v} for k, v in self.quotas.items()]}]


def test_a_capacity_above_the_accounts_quota_admits_against_the_quota_and_says_so() -> None:
    limit, note = limit_for({GPU: 4}, GPU, "training", Quotas({"ml.g4dn.xlarge for training job usage": 2.0}))
    assert limit == 2
    assert "capacity for ml.g4dn.xlarge, 4, is above the account's quota" in note and "admitted against 2" in note


def test_a_quota_that_cannot_be_read_leaves_the_capacity_as_the_limit_and_says_why() -> None:
    limit, note = limit_for({GPU: 4}, GPU, "training", Quotas(error="AccessDeniedException"))
    assert limit == 4 and "AccessDeniedException" in note and "admitted against the capacity, 4" in note
    limit, note = limit_for({GPU: 4}, GPU, "training", Quotas({"ml.p3.2xlarge for training job usage": 1.0}))
    assert limit == 4 and "lists no such quota" in note
    # A quota at or above the capacity: the capacity, and nothing to say.
    assert limit_for({GPU: 4}, GPU, "training", Quotas({quota_name(GPU, "training"): 8.0})) == (4, "")


def test_the_transform_reads_its_own_quota_and_an_unknown_type_is_refused() -> None:
    assert quota_name("ml.m5.xlarge", "evaluation") == "ml.m5.xlarge for transform job usage"
    with pytest.raises(AdmissionRefused, match=r"ml\.p3\.2xlarge has no capacity .* add it to 'capacity' in cdk.json"):
        limit_for({GPU: 4}, "ml.p3.2xlarge", "training", Quotas())


# ---------------------------------------------------------------------- the month's ledger


def test_a_worst_case_that_fits_exactly_is_accepted_and_one_cent_more_is_refused_with_the_numbers(db) -> None:
    ledger = Ledger(db, TABLE, Decimal("100.00"))
    ledger.reserve("2026-12", "arn:exec:1", Decimal("30.00"), {"run_id": "run1"})
    ledger.settle("2026-12", "arn:exec:1", Decimal("12.34"))  # billed
    ledger.reserve("2026-12", "arn:exec:2", Decimal("50.00"), {"run_id": "run2"})  # running
    # 100 - 12.34 - 50 = 37.66 remain.
    with pytest.raises(MonthlyBudgetExceeded) as refused:
        ledger.reserve("2026-12", "arn:exec:3", Decimal("37.67"), {"run_id": "run3"})
    message = str(refused.value)
    for words in (
        "$100.00 for 2026-12",
        "$12.34 billed",
        "$50.00 reserved",
        "worst case is $37.67",
        "$37.66 would fit",
    ):
        assert words in message
    ledger.reserve("2026-12", "arn:exec:3", Decimal("37.66"), {"run_id": "run3"})
    month = ledger.month("2026-12")
    assert (month.billed, month.reserved, month.remaining) == (Decimal("12.34"), Decimal("87.66"), Decimal("0.00"))


def test_a_retried_reservation_or_settlement_counts_once(db) -> None:
    ledger = Ledger(db, TABLE, Decimal("100"))
    for _ in range(2):
        ledger.reserve("2026-12", "arn:exec:1", Decimal("40.00"), {"run_id": "run1"})
    assert ledger.month("2026-12").reserved == Decimal("40.00")
    assert ledger.settle("2026-12", "arn:exec:1", Decimal("3.21")) is True
    assert ledger.settle("2026-12", "arn:exec:1", Decimal("3.21")) is False
    month = ledger.month("2026-12")
    assert (month.billed, month.reserved) == (Decimal("3.21"), Decimal("0.00"))


def test_months_are_apart_and_no_budget_records_without_refusing(db) -> None:
    ledger = Ledger(db, TABLE, None)
    ledger.reserve("2026-11", "arn:exec:1", Decimal("900.00"), {"run_id": "run1"})
    ledger.reserve("2026-12", "arn:exec:2", Decimal("900.00"), {"run_id": "run2"})
    assert ledger.month("2026-12").reserved == Decimal("900.00")
    assert Ledger(db, TABLE, Decimal("1000")).month("2026-12").remaining == Decimal("100.00")
    with pytest.raises(MonthlyBudgetExceeded, match=r"worst case is \$1,000.01"):
        Ledger(db, TABLE, Decimal("1000")).reserve("2027-01", "arn:exec:3", Decimal("1000.01"), {})


def test_make_runs_shows_who_holds_who_waits_and_the_months_money(db) -> None:
    from tools.runs import state, text

    clock = Clock()
    slots = Slots(db, TABLE, clock)
    slots.record_limit(GPU, 2)
    for n in (1, 2):
        slots.enqueue(ticket(n))
    slots.pump(GPU, 2, Tokens())
    ledger = Ledger(db, TABLE, Decimal("500"))
    ledger.reserve("2026-12", "arn:exec:1", Decimal("120.00"), {"run_id": "run1"})
    ledger.reserve("2026-12", "arn:exec:0", Decimal("50.00"), {"run_id": "run0"})
    ledger.settle("2026-12", "arn:exec:0", Decimal("7.50"))
    report = state(db, TABLE, {GPU: 4}, "2026-12", Decimal("500"), clock.now + 90)
    shown = text(report)
    assert f"{GPU}: 2 of 2 slots held (capacity 4), 1 run(s) queued" in shown
    assert "holding  run1 (training, 2 slots, 90 s)" in shown
    assert "queued   run2 (training, 2 slots, waiting 90 s)" in shown
    assert "2026-12: $7.50 billed, $120.00 reserved, budget $500, $372.50 remaining" in shown
    assert "1 run(s) with a reservation, 1 settled this month" in shown


def test_the_quota_is_read_from_any_page_and_a_quota_equal_to_the_capacity_says_nothing() -> None:
    class Paged(Quotas):
        def paginate(self, ServiceCode: str) -> list[dict[str, Any]]:  # noqa: N803
            # A page may come without Quotas; the one sought may be on a later page.
            return [{}, {"Quotas": [{"QuotaName": "other", "Value": 9.0}]}, *super().paginate(ServiceCode)]

    assert limit_for({GPU: 2}, GPU, "training", Paged({f"{GPU} for training job usage": 2.0})) == (2, "")
    assert limit_for({GPU: 2}, GPU, "training", Paged({f"{GPU} for training job usage": 1.0}))[0] == 1

    class Unreadable(Quotas):
        def paginate(self, ServiceCode: str) -> list[dict[str, Any]]:  # noqa: N803
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListServiceQuotas")

    assert limit_for({GPU: 2}, GPU, "training", Unreadable({})) == (
        2,
        f"The quota '{GPU} for training job usage' was not read (Service Quotas could not be read "
        "(AccessDeniedException)): admitted against the capacity, 2.",
    )


def test_admission_pumps_every_type_against_its_recorded_limit_or_its_capacity(db) -> None:
    slots, woken = Slots(db, TABLE, Clock()), Tokens()
    cpu = "ml.m5.xlarge"
    slots.enqueue(ticket(1))
    slots.enqueue(Ticket(cpu, 1, "arn:exec:2", "evaluation", "2026-12-07T00:00:02Z", run_id="run2", token="tok2"))
    slots.record_limit(GPU, 2)  # the GPU's limit was recorded (the quota); the CPU's never was: its capacity
    admitted = pump_all(slots, {GPU: 4, cpu: 1}, {GPU, cpu}, woken)
    assert [t.execution for t in admitted] == ["arn:exec:1", "arn:exec:2"] and woken.sent == ["tok1", "tok2"]
    assert slots.pool(GPU) == (2, 2) and slots.pool(cpu)[0] == 1


class ConsistentReads:
    """The DynamoDB client, asserting every read of the governance table is strongly consistent:
    an eventually consistent read may miss a grant made a moment ago and admit past the limit."""

    def __init__(self, db: Any, reads: list[str] | None = None) -> None:
        self.db, self.reads = db, [] if reads is None else reads  # the operations read, paginated ones too

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.db, name)
        if name == "get_paginator":
            return lambda op: ConsistentReads(attr(op), self.reads)
        if name not in ("get_item", "query", "paginate"):
            return attr

        def read(**params: Any) -> Any:
            assert params.get("ConsistentRead") is True, f"{name} without ConsistentRead: {params}"
            self.reads.append(name)
            return attr(**params)

        return read


def test_every_read_of_slots_and_ledger_is_strongly_consistent(db) -> None:
    reads = ConsistentReads(db)
    slots, ledger = Slots(reads, TABLE, Clock()), Ledger(reads, TABLE, Decimal("100"))
    slots.enqueue(ticket(1))
    ledger.reserve("2026-12", "arn:exec:1", Decimal("10"), {"run_id": "run1"})
    slots.pump(GPU, 2, Tokens())
    assert [t.state for t in slots.tickets(GPU)] == [HELD] and slots.pool(GPU)[0] == 2
    assert ledger.month("2026-12").reserved == Decimal("10.00") and len(ledger.entries("2026-12")) == 1
    assert ledger.facts("2026-12", "arn:exec:1") is not None
    assert {"get_item", "paginate"} <= set(reads.reads)  # both ways of reading were seen


class Conflicting:
    """DynamoDB at a busy moment: every transaction is cancelled, for `reason` (TransactWriteItems:
    TransactionCanceledException with one CancellationReason per item)."""

    def __init__(self, db: Any, reason: str) -> None:
        self.db, self.reason = db, reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def transact_write_items(self, TransactItems: list[Any]) -> None:  # noqa: N803
        reasons = [{"Code": "None"}, {"Code": self.reason}]
        error = {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": reasons,
        }
        raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]


def test_a_transaction_that_conflicts_is_retried_not_taken_for_a_failed_condition(db) -> None:
    from pipeline.aws.errors import TransientAwsError, classified_aws_errors, is_transient

    Slots(db, TABLE, Clock()).enqueue(ticket(1))
    Ledger(db, TABLE, None).reserve("2026-12", "arn:exec:1", Decimal("5"), {"run_id": "run1"})
    busy = Conflicting(db, "TransactionConflict")
    # Another run's grant wrote the pool at the same moment: not "no room", not "settled already".
    with pytest.raises(ClientError) as raised:
        Slots(busy, TABLE, Clock()).grant(ticket(1), 2)
    assert is_transient(raised.value)
    with pytest.raises(TransientAwsError), classified_aws_errors():  # the workflow's Retry takes it from here
        Ledger(busy, TABLE, None).settle("2026-12", "arn:exec:1", Decimal("1"))
    # A condition that failed is still an answer: no room, or settled by another path.
    failed = Conflicting(db, "ConditionalCheckFailed")
    assert Slots(failed, TABLE, Clock()).grant(ticket(1), 2) is False
    assert Ledger(failed, TABLE, None).settle("2026-12", "arn:exec:1", Decimal("1")) is False
    assert is_transient(ClientError({"Error": {"Code": "TransactionConflictException"}}, "UpdateItem"))


def test_spot_training_is_admitted_against_the_spot_quota() -> None:
    # Service Quotas lists managed spot training apart: "ml.g4dn.xlarge for spot training job usage".
    assert quota_name(GPU, "training", spot=True) == "ml.g4dn.xlarge for spot training job usage"
    assert quota_name("ml.m5.xlarge", "evaluation", spot=True) == "ml.m5.xlarge for transform job usage"
    quotas = Quotas({f"{GPU} for training job usage": 4.0, f"{GPU} for spot training job usage": 1.0})
    assert limit_for({GPU: 4}, GPU, "training", quotas, spot=True)[0] == 1
    assert limit_for({GPU: 4}, GPU, "training", quotas) == (4, "")


def test_a_quota_that_cannot_be_read_now_keeps_the_limit_last_read() -> None:
    # Quota 2 read earlier and recorded; now the read is throttled: not the capacity, 4.
    limit, note = limit_for({GPU: 4}, GPU, "training", Quotas(error="ThrottlingException"), recorded=2)
    assert limit == 2 and note.endswith("admitted against the last limit read, 2.")
    assert limit_for({GPU: 4}, GPU, "training", Quotas(error="ThrottlingException"))[0] == 4  # never read: capacity
    assert limit_for({GPU: 4}, GPU, "training", Quotas({f"{GPU} for training job usage": 3.0}), recorded=2)[0] == 3


def test_a_ticket_given_a_new_token_by_a_retried_admission_is_not_given_back_for_the_old_one(db) -> None:
    slots = Slots(db, TABLE, Clock())
    first = slots.enqueue(ticket(1))  # Admit's first attempt, token tok1, then it failed
    retried = slots.enqueue(dataclasses.replace(ticket(1), token="tok1-retry"))  # Lambda retried Admit
    assert retried.token == "tok1-retry" and retried.key == first.key
    assert slots.give_back(first) is False  # tok1 timed out: that is not this run's end
    assert [t.token for t in slots.tickets(GPU)] == ["tok1-retry"]
    assert slots.give_back(retried) is True and slots.tickets(GPU) == []


# ---------------------------------------------------------------------- the notice's words and the wire


def test_an_admission_reads_in_the_notice_as_waited_and_held() -> None:
    from pipeline.governance.admission import Admitted

    def admitted(slots: int, waited: float, note: str = "") -> Admitted:
        return Admitted(GPU, slots, 4, 1000.0, 1000.0 + waited, waited, note)

    assert admitted(2, 0.4).line("Training slots") == "Training slots: admitted at once (2 ml.g4dn.xlarge slots of 4)."
    assert (
        admitted(1, 95).line("Training slots")
        == "Training slots: queued 95 s until 1 ml.g4dn.xlarge slot of 4 was free."
    )
    # From two minutes on, minutes with one decimal: 150 s is 2.5 min.
    assert admitted(2, 150, "Quota read.").line("Test slots") == (
        "Test slots: queued 2.5 min until 2 ml.g4dn.xlarge slots of 4 were free. Quota read."
    )
    assert admitted(2, 1).line("T") == "T: queued 1 s until 2 ml.g4dn.xlarge slots of 4 were free."
    assert admitted(1, 119.6).line("T") == "T: queued 120 s until 1 ml.g4dn.xlarge slot of 4 was free."


def test_the_leases_survive_the_wire_and_the_wait_is_counted_from_the_queue() -> None:
    from pipeline.governance.admission import Admissions, admission_output

    ticket = Ticket(GPU, 2, "exec", "training", "2026-12-07T00:00:00Z", enqueued_at=100.0, admitted_at=195.34, note="n")
    training = admission_output(ticket, 4)
    assert training == {
        "instance_type": GPU,
        "slots": 2,
        "limit": 4,
        "enqueued_at": 100.0,
        "admitted_at": 195.34,
        "waited_seconds": 95.3,  # rounded to a tenth
        "note": "n",
    }
    early = dataclasses.replace(ticket, admitted_at=99.0)  # clocks of two Lambdas: never a negative wait
    assert admission_output(early, 4)["waited_seconds"] == 0.0
    both = Admissions.from_dict({"training": training, "evaluation": {**training, "instance_type": "ml.m5.xlarge"}})
    assert (both.training.slots, both.training.waited_seconds) == (2, 95.3)
    assert both.evaluation is not None and both.evaluation.instance_type == "ml.m5.xlarge"
    assert Admissions.from_dict({"training": training}).evaluation is None
    assert Admissions.from_dict({"training": training, "evaluation": None}).evaluation is None


def test_the_deployment_reaches_the_functions_through_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.governance.admission import Governance

    monkeypatch.setenv("GOVERNANCE_TABLE", "ic-tuning-dev-governance")
    monkeypatch.setenv("CAPACITY", '{"ml.g4dn.xlarge": 4, "ml.m5.xlarge": 2}')
    monkeypatch.setenv("MONTHLY_BUDGET_USD", "1000.50")
    governance = Governance.from_environment()
    assert governance == Governance("ic-tuning-dev-governance", {GPU: 4, "ml.m5.xlarge": 2}, Decimal("1000.50"))
    monkeypatch.setenv("MONTHLY_BUDGET_USD", "")  # null in cdk.json: recorded, not capped
    assert Governance.from_environment().monthly_budget_usd is None
    monkeypatch.delenv("MONTHLY_BUDGET_USD")
    assert Governance.from_environment().monthly_budget_usd is None


def test_a_refusal_by_the_month_gives_every_amount_and_what_would_fit() -> None:
    from pipeline.governance.ledger import Month, refusal

    month = Month("2026-12", Decimal("1000"), Decimal("600.5"), Decimal("349.5"))  # $50.00 left
    assert refusal(month, Decimal("80"), per_job=Decimal("20")) == (
        "the month's budget is spent or promised: monthly_budget_usd $1,000.00 for 2026-12, $600.50 billed by "
        "ended runs, $349.50 reserved by running and queued runs; this run's worst case is $80.00 and only $50.00 "
        "would fit (at this instance type and max_runtime_seconds: max_training_jobs 2 or fewer). Lower the run's "
        "worst case, wait for running runs to end (their reservations settle to what they billed), or raise "
        "monthly_budget_usd in cdk.json. Nothing was started."
    )
    # Less left than one job: no hint; more promised than the budget: $0.00 fits, never a negative amount.
    assert "would fit. Lower" in refusal(month, Decimal("80"), per_job=Decimal("60"))
    assert "would fit. Lower" in refusal(month, Decimal("80"))
    over = Month("2026-12", Decimal("100"), Decimal("90"), Decimal("20"))
    assert "only $0.00 would fit. Lower" in refusal(over, Decimal("5"), per_job=Decimal("1"))
    assert "would fit (at this instance type and max_runtime_seconds: max_training_jobs 50 or fewer)" in refusal(
        month, Decimal("80"), per_job=Decimal("1")
    )


class SendTaskSuccess(Fake):
    """Step Functions' SendTaskSuccess, held to its API model: records each output; answers `code`
    for every token if given."""

    SERVICE = "stepfunctions"

    def __init__(self, code: str = "") -> None:
        self.sent: list[dict[str, Any]] = []
        self.code = code

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803
        if self.code:
            raise ClientError({"Error": {"Code": self.code, "Message": "m"}}, "SendTaskSuccess")
        self.sent.append({"token": taskToken, **json.loads(output)})
        return {}


@pytest.mark.parametrize("code", ["InvalidToken", "TaskTimedOut", "TaskDoesNotExist"])
def test_a_run_that_no_longer_waits_is_not_woken_and_anything_else_is_an_error(db, code: str) -> None:
    # The token's execution ended (aborted, timed out): the waker says so, and the queue moves on.
    from pipeline.governance.admission import waker

    slots = Slots(db, "gov", Clock())
    assert waker(SendTaskSuccess(code), slots)(ticket(1)) is False
    with pytest.raises(ClientError):
        waker(SendTaskSuccess("AccessDeniedException"), slots)(ticket(1))
    # A ticket without a token (a retried admission sends its own): nothing to send, counted as woken.
    silent = SendTaskSuccess()
    assert waker(silent, slots)(dataclasses.replace(ticket(2), token="")) is True and silent.sent == []


def test_the_woken_run_is_told_the_limit_recorded_for_its_pool(db) -> None:
    from pipeline.governance.admission import waker

    slots, sfn = Slots(db, "gov", Clock()), SendTaskSuccess()
    assert waker(sfn, slots)(ticket(1)) is True
    assert (sfn.sent[0]["token"], sfn.sent[0]["limit"]) == ("tok1", 0)  # no limit recorded yet: 0, not a guess
    slots.record_limit(GPU, 3)
    waker(sfn, slots)(ticket(2))
    assert sfn.sent[1]["limit"] == 3


def test_queued_runs_are_admitted_against_the_recorded_limit_else_the_capacity(db) -> None:
    slots, tokens = Slots(db, "gov", Clock()), Tokens()
    for n in (1, 2, 3):
        slots.enqueue(ticket(n))  # 2 slots each
    assert [t.execution for t in pump_all(slots, {GPU: 4}, {GPU}, tokens)] == ["arn:exec:1", "arn:exec:2"]
    slots.give_back(dataclasses.replace(ticket(1), state=HELD))
    slots.record_limit(GPU, 2)  # the quota read since: 2 at once, below the capacity
    assert pump_all(slots, {GPU: 4}, {GPU}, tokens) == []  # run 2 holds 2 of 2
    assert pump_all(slots, {}, {"ml.p3.2xlarge"}, tokens) == []  # an unknown type: no capacity, no admission


def test_a_reservation_of_exactly_the_budget_fits_and_a_cent_more_does_not(db) -> None:
    ledger = Ledger(db, "gov", Decimal("10.00"))
    ledger.reserve("2026-12", "arn:exec:1", Decimal("10.00"), {"run_id": "run1"})
    assert ledger.month("2026-12").reserved == Decimal("10.00")
    with pytest.raises(MonthlyBudgetExceeded, match=r"monthly_budget_usd \$10.00 for 2026-12"):
        Ledger(db, "gov", Decimal("10.00")).reserve("2026-12", "arn:exec:2", Decimal("0.01"), {"run_id": "run2"})
    with pytest.raises(MonthlyBudgetExceeded, match=r"for 2026-11, \$0.00 billed"):  # a run alone above it
        Ledger(db, "gov", Decimal("10.00")).reserve("2026-11", "arn:exec:3", Decimal("10.01"), {"run_id": "run3"})


def test_settling_a_run_that_never_reserved_changes_nothing(db) -> None:
    ledger = Ledger(db, "gov", None)
    assert ledger.settle("2026-12", "arn:exec:9", Decimal("1.00")) is False
    month = ledger.month("2026-12")
    assert (month.billed, month.reserved, ledger.entries("2026-12")) == (Decimal(0), Decimal(0), [])


def test_amounts_are_rounded_half_up_to_the_cent() -> None:
    from pipeline.governance.ledger import usd

    # Half up, as a price is rounded, not half to even: $0.125 is $0.13, $0.135 is $0.14.
    assert (usd("0.125"), usd("0.135"), usd(0.004), usd("2.675")) == (
        Decimal("0.13"),
        Decimal("0.14"),
        Decimal("0.00"),
        Decimal("2.68"),
    )


def test_a_quota_read_refused_says_by_what_and_one_found_says_nothing() -> None:
    from pipeline.governance.admission import applied_quota

    class Refused:
        def __init__(self, response: dict[str, Any]) -> None:
            self.response = response

        def get_paginator(self, operation: str) -> Refused:
            return self

        def paginate(self, ServiceCode: str) -> Any:  # noqa: N803
            raise ClientError(self.response, "ListServiceQuotas")  # type: ignore[arg-type]

    denied = {"Error": {"Code": "AccessDeniedException", "Message": "m"}}
    assert applied_quota(Refused(denied), "q") == (None, "Service Quotas could not be read (AccessDeniedException)")
    assert applied_quota(Refused({}), "q") == (None, "Service Quotas could not be read (error)")
    assert applied_quota(Refused({"Error": {}}), "q") == (None, "Service Quotas could not be read (error)")

    class Listed(Refused):
        def paginate(self, ServiceCode: str) -> Any:  # noqa: N803
            return [{"Quotas": [{"QuotaName": "other", "Value": 9.0}]}, {"Quotas": [{"QuotaName": "q", "Value": 4.0}]}]

    assert applied_quota(Listed({}), "q") == (4, "")
    assert applied_quota(Listed({}), "absent") == (None, "Service Quotas lists no such quota")
