"""A self-contained HTML report of a finished run: leaderboard and plots (matplotlib, inline PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.contract import BestJob, Registered, Run  # noqa: E402
from tools.synth import ROOT  # noqa: E402

COLORS = {"sgd": "#1f77b4", "adam": "#d62728", "rmsprop": "#2ca02c", "nag": "#9467bd"}
OTHER = "#777777"


def _optimizer(row: dict[str, Any]) -> str:
    return str(row["hyperparameters"].get("optimizer") or row.get("definition") or row["job"].split("-")[-3])


def _figure(title: str, fig: Figure) -> str:
    """A matplotlib figure as an inline PNG: the report stays one self-contained file."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    alt = html.escape(title)
    return f'<figure><figcaption>{alt}</figcaption><img alt="{alt}" src="data:image/png;base64,{data}"></figure>'


def _leaderboard(rows: list[dict[str, Any]]) -> str:
    """One bar per completed job, best at the top, labelled with its launch number and optimizer."""
    launched = [(i, r) for i, r in enumerate(rows, start=1) if r["accuracy"] is not None]
    ranked = sorted(launched, key=lambda ir: ir[1]["accuracy"])
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(ranked) + 1))
    ax.barh(
        [f"#{i} {_optimizer(r)}" for i, r in ranked],
        [r["accuracy"] for _, r in ranked],
        color=[COLORS.get(_optimizer(r), OTHER) for _, r in ranked],
    )
    ax.set_xlim(0, 1)
    ax.set_xlabel("validation accuracy")
    return _figure("Leaderboard: validation accuracy per completed training job (colour: optimizer)", fig)


def _per_job(rows: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    best, xs, ys = -1.0, [], []
    for i, r in enumerate(rows, start=1):
        if r["accuracy"] is not None:
            ax.scatter(i, r["accuracy"], color=COLORS.get(_optimizer(r), OTHER), s=25)
            best = max(best, r["accuracy"])
        if best >= 0:
            xs.append(i)
            ys.append(best)
    ax.step(xs, ys, where="post", color="#333333", label="best so far")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training job, in launch order")
    ax.set_ylabel("validation accuracy")
    ax.legend(loc="lower right")
    return _figure("Validation accuracy per training job, in launch order; line: best so far", fig)


def _against(name: str, done: list[dict[str, Any]]) -> str:
    points = [(float(r["hyperparameters"][name]), r) for r in done if name in r["hyperparameters"]]
    fig, ax = plt.subplots(figsize=(4, 3))
    for value, r in points:
        ax.scatter(value, r["accuracy"], color=COLORS.get(_optimizer(r), OTHER), s=25)
    values = [v for v, _ in points]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel(name)
    ax.set_ylabel("validation accuracy")
    return _figure(f"accuracy vs {name}", fig)


def _confusion(evaluation: dict[str, Any]) -> str:
    matrix = evaluation["confusion_matrix"]
    size = len(matrix)
    fig, ax = plt.subplots(figsize=(0.45 * size + 2.5, 0.45 * size + 2))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    per_class = evaluation["per_class_accuracy"]
    ax.set_yticks(range(size), [f"{i} ({a:.0%})" if a is not None else f"{i} (-)" for i, a in enumerate(per_class)])
    ax.set_xticks(range(size), [str(i) for i in range(size)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (accuracy)")
    title = (
        f"Confusion matrix on the held-out test split: {evaluation['test_samples']} images, "
        f"accuracy {evaluation['test_accuracy']:.4f}"
    )
    return _figure(title, fig)


def render(output: dict[str, Any], rows: list[dict[str, Any]], evaluation: dict[str, Any] | None = None) -> str:
    done = [r for r in rows if r["accuracy"] is not None]
    names = sorted({k for r in done for k in r["hyperparameters"] if k != "optimizer"})
    figures = [_leaderboard(rows), _per_job(rows), *(_against(name, done) for name in names)]
    if evaluation is not None:
        figures.insert(0, _confusion(evaluation))
    test = (
        f"test accuracy <b>{evaluation['test_accuracy']:.4f}</b> on {evaluation['test_samples']} held-out images; "
        if evaluation
        else "no test split (the validation accuracy is the best of the run's scores: optimistic); "
    )
    legend = " ".join(f'<span style="color:{c}">&#9679; {o}</span>' for o, c in COLORS.items())

    def accuracy(r: dict[str, Any]) -> str:
        return "" if r["accuracy"] is None else f"{r['accuracy']:.4f}"

    table = "".join(
        f"<tr><td>{i}</td><td>{accuracy(r)}</td>"
        f"<td>{html.escape(r['status'])}</td><td>{html.escape(_optimizer(r))}</td><td>{html.escape(r['job'])}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in sorted(r['hyperparameters'].items())))}</td></tr>"
        for i, r in enumerate(sorted(rows, key=lambda r: -(r["accuracy"] or -1)), start=1)
    )
    run, best = Run.from_dict(output["run"]), BestJob.from_dict(output["best"])
    registered = Registered(**output["registered"])
    billed = f"{best.bill.billable_seconds} s, about ${best.bill.estimated_cost_usd:,.2f}" if best.bill else "n/a"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Tuning report {html.escape(run.run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:3px 6px;font-size:12px}}
figure{{display:inline-block;margin:0 1em 1em 0}}figcaption{{font-size:12px}}</style></head><body>
<h1>Tuning run {html.escape(run.run_id)}</h1>
<p>Dataset {html.escape(run.dataset.uri)} (version {html.escape(run.dataset.version_id)}),
layout <b>{html.escape(run.settings.layout)}</b>, strategy <b>{html.escape(run.settings.strategy)}</b>.</p>
<p>Best: validation accuracy <b>{best.accuracy:.4f}</b> by {html.escape(best.training_job_name)} ({html.escape(best.optimizer)}); {test}
registered as {html.escape(registered.model_package_arn)} ({html.escape(registered.approval_status)}).</p>
<p>Cost: worst case allowed ${run.cost.worst_case_usd:,.2f} ({html.escape(run.cost.basis)}); training billed
{billed} at GPU prices.</p>
<p>{legend}</p>{"".join(figures)}
<h2>Leaderboard</h2><table><tr><th>#</th><th>accuracy</th><th>status</th><th>optimizer</th><th>training job</th><th>hyperparameters</th></tr>{table}</table>
</body></html>"""


def write_report(pipeline: Any, output: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write report.html beside the metrics document (S3) and under local-run/."""
    tested, evaluation = output.get("tested") or {}, None
    if tested.get("evaluation_uri"):
        where, _, key = tested["evaluation_uri"].removeprefix("s3://").partition("/")
        evaluation = json.loads(pipeline.client("s3").get_object(Bucket=where, Key=key)["Body"].read())
    text = render(output, rows, evaluation)
    metrics_uri = output["registered"]["metrics_uri"]
    bucket, _, key = metrics_uri.removeprefix("s3://").partition("/")
    report_key = key.rsplit("/", 1)[0] + "/report.html"
    pipeline.client("s3").put_object(Bucket=bucket, Key=report_key, Body=text.encode(), ContentType="text/html")
    local_path = ROOT / "local-run" / "report.html"
    local_path.write_text(text)
    return {"s3_uri": f"s3://{bucket}/{report_key}", "local_path": str(local_path)}
