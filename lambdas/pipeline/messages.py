"""Notification texts: what happened, the numbers, where to look, what to do."""

from __future__ import annotations

import unicodedata
from typing import Any

from pipeline.aws.errors import (
    QUEUE_WAIT_EXPIRED,
    WORKFLOW_TIMEOUT,
    AdmissionRefused,
    BudgetExceeded,
    DatasetError,
    MonthlyBudgetExceeded,
    NoSuccessfulTrainingJob,
    QuotaExceeded,
    TransientAwsError,
    TuningFailed,
    caught,
)
from pipeline.contract import BestJob, Bill, Cost, Notification, Registered, Run, Tested, Tuning
from pipeline.governance.admission import Admissions

SUBJECT_MAX = 99  # SNS: subjects up to 100 ASCII characters, no line breaks or control characters

ADVICE = {
    DatasetError.__name__: "Fix the dataset as described above and upload the manifest again; "
    "a new manifest version starts a new run.",
    QuotaExceeded.__name__: "Raise the quota named above in Service Quotas, then upload the manifest again.",
    TuningFailed.__name__: "Open the tuning job in the SageMaker console and read each training job's "
    "FailureReason; fix the cause and upload the manifest again.",
    NoSuccessfulTrainingJob.__name__: "Open the tuning job in the SageMaker console and read each training "
    "job's FailureReason; fix the cause and upload the manifest again.",
    WORKFLOW_TIMEOUT: "The run exceeded its time limit and its tuning jobs were stopped. Lower "
    "max_training_jobs or max_runtime_seconds, or raise max_parallel_jobs.",
    BudgetExceeded.__name__: "Lower the budget drivers named above in the manifest's tuning block (or raise "
    "max_cost_usd), then upload the manifest again. No training job was started.",
    TransientAwsError.__name__: "AWS kept throttling or failing after all retries. Upload the manifest again later.",
    MonthlyBudgetExceeded.__name__: "The month's budget, not this run's own cap, refused the run: see the amounts "
    "above. Upload the manifest again when running runs have settled, or next month.",
    AdmissionRefused.__name__: "Change the setting named above, then upload the manifest again.",
    QUEUE_WAIT_EXPIRED: "Other runs held the slots for the whole wait. `make runs` shows who holds them; raise "
    "capacity (and the account's quota) or max_queue_wait_seconds in cdk.json, then upload the manifest again.",
}
DEFAULT_ADVICE = (
    "Read the execution's history in the Step Functions console for details, then upload the manifest again."
)


def subject_safe(text: str) -> str:
    """An SNS subject: ASCII only (accents dropped, others '?'), one line, at most 99 characters."""
    folded = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(
        c if c.isascii() and c.isprintable() else " " if c.isspace() else "?"
        for c in folded
        if not unicodedata.combining(c)
    )
    return " ".join(ascii_only.split())[:SUBJECT_MAX] or "Tuning pipeline"


def console_base(region: str) -> str:
    host = "console.amazonaws.cn" if region.startswith("cn-") else f"{region}.console.aws.amazon.com"
    return f"https://{host}/sagemaker/home?region={region}"


def _cost_line(cost: Cost, bill: Bill | None) -> str:
    if bill is None:
        return ""
    if bill.complete:
        partial = ""
    elif bill.training_jobs is None:
        partial = " - partial: the training jobs could not be listed"
    else:
        partial = f" - partial: {bill.billed_jobs} of {bill.training_jobs} training jobs counted"
    return (
        f"Training billed: {bill.billable_seconds} s, about ${bill.estimated_cost_usd:,.2f}{partial} "
        f"(worst case allowed: ${cost.worst_case_usd:,.2f}; {cost.basis})\n"
    )


def _test_line(tested: Tested | None) -> str:
    if tested is not None and tested.status == "Failed":
        return (
            f"Test accuracy: the held-out evaluation failed ({tested.failure_reason}); the model is registered "
            "pending manual approval, judged by its validation accuracy only\n"
        )
    if tested is None or tested.status != "Completed" or tested.accuracy is None:
        return (
            "Test accuracy: no test split (the validation accuracy above is the best of the run's scores: "
            "optimistic; add test/ + test_lst/ to the dataset for an unbiased one)\n"
        )
    return f"Test accuracy: {tested.accuracy:.4f} on {tested.samples} held-out images ({tested.evaluation_uri})\n"


def _approval_line(registered: Registered) -> str:
    return f"Why: {registered.approval_reason}\n" if registered.approval_reason else ""


def _warnings_block(run: Run) -> str:
    """What validation let through under a deployment's `warn` setting: first, where it is read."""
    if not run.data.warnings:
        return ""
    listed = "\n".join(f"- {warning}" for warning in run.data.warnings)
    return f"Validation warned ({len(run.data.warnings)}); the version is not auto-approved:\n{listed}\n\n"


def _admission_block(admission: Admissions | None) -> str:
    if admission is None:
        return ""
    lines = [admission.training.line("Training slots")]
    if admission.evaluation is not None:
        lines.append(admission.evaluation.line("Test transform slot"))
    return "\n".join(lines) + "\n"


SHOWN_REFUSALS = 3  # parents left out that a notice lists; the rest are counted (all in the metrics document)


def _warm_start_block(run: Run, tuning: Tuning | None) -> str:
    """Which earlier runs the search started from, and why; or why it started cold."""
    weighed = tuning.warm_start if tuning else ()
    if run.settings.warm_start == "off" and not weighed:
        return ""
    if run.settings.layout == "definitions":
        return (
            "Warm start: none, a cold start (layout definitions: SageMaker warm-starts one training definition only)\n"
        )
    taken = [p for p in weighed if p.taken]
    left = [p for p in weighed if not p.taken]
    shown = [*taken, *left[:SHOWN_REFUSALS]]
    lines = [f"- {p.job} {'from' if p.taken else 'not from'} {p.parent}: {p.why}" for p in shown]
    if len(left) > SHOWN_REFUSALS:
        lines.append(f"- and {len(left) - SHOWN_REFUSALS} more left out (the metrics document lists them)")
    if not taken:
        head = (
            "Warm start: none, a cold start (no earlier run of this dataset or a similar one that SageMaker would take)"
        )
        return head + (":\n" + "\n".join(lines) if lines else "") + "\n"
    return f"Warm start: {len(taken)} parent(s) taken ({run.settings.warm_start}):\n" + "\n".join(lines) + "\n"


def success_message(
    run: Run,
    best: BestJob,
    registered: Registered,
    region: str,
    tested: Tested | None = None,
    admission: Admissions | None = None,
    tuning: Tuning | None = None,
) -> Notification:
    base = console_base(region)
    hps = "\n".join(f"  {k} = {v}" for k, v in sorted(best.hyperparameters.items()))
    message = (
        f"Tuning run {run.run_id} finished.\n\n"
        f"{_warnings_block(run)}"
        f"Dataset: {run.dataset.uri} (manifest version {run.dataset.version_id})\n"
        f"Best validation accuracy: {best.accuracy:.4f}\n"
        f"{_test_line(tested)}"
        f"Optimizer: {best.optimizer}\n"
        f"Training job: {best.training_job_name} (tuning job {best.tuning_job_name})\n"
        f"Hyperparameters:\n{hps}\n"
        f"{_warm_start_block(run, tuning)}"
        f"{_cost_line(run.cost, best.bill)}\n"
        f"{_admission_block(admission)}"
        f"Model package: {registered.model_package_arn} ({registered.approval_status})\n"
        f"{_approval_line(registered)}"
        f"Metrics document: {registered.metrics_uri}\n"
        f"Model artifact: {best.model_data_url}\n\n"
        f"Tuning job: {base}#/hyper-tuning-jobs/{best.tuning_job_name}\n"
        f"Model registry: {base}#/model-registry\n"
    )
    held_out = tested is not None and tested.status == "Completed" and tested.accuracy is not None
    measure = f"test accuracy {tested.accuracy:.3f}" if held_out and tested else f"accuracy {best.accuracy:.3f}"
    subject = f"Tuning succeeded: {run.dataset.name} {measure}"
    return Notification(subject=subject_safe(subject), message=message)


def failure_message(
    error: dict[str, Any],
    *,
    run_id: str | None,
    dataset_name: str,
    dataset_uri: str,
    stopped: list[str],
    region: str,
) -> Notification:
    """The failure notice: what failed, why, what to do, and which jobs were stopped."""
    name, cause = caught(error.get("Error", "Error"), error.get("Cause", ""))
    lines = [
        f"Tuning run {run_id} failed." if run_id else "Tuning run failed.",
        "",
        f"Dataset: {dataset_uri}",
        f"What failed: {name}",
        f"Why: {cause}",
        f"What to do: {ADVICE.get(name, DEFAULT_ADVICE)}",
    ]
    if stopped:
        lines.append(f"Stopped tuning jobs so no GPU keeps running: {', '.join(stopped)}")
    subject = f"Tuning failed: {dataset_name} ({name})"
    return Notification(subject=subject_safe(subject), message="\n".join(lines) + "\n")
