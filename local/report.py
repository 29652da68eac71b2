"""A self-contained HTML report of a finished run: leaderboard and plots (inline SVG)."""

from __future__ import annotations

import html
import math
from typing import Any

from pipeline.contract import BestJob, Registered, Run
from tools.synth import ROOT

COLORS = {"sgd": "#1f77b4", "adam": "#d62728", "rmsprop": "#2ca02c", "nag": "#9467bd"}
W, H, PAD = 420, 240, 36


def _optimizer(row: dict[str, Any]) -> str:
    return row["hyperparameters"].get("optimizer") or row.get("definition") or row["job"].split("-")[-3]


def _scale(values: list[float], lo_px: float, hi_px: float, log: bool = False) -> Any:
    vals = [math.log10(v) if log else v for v in values]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5

    def f(v: float) -> float:
        x = math.log10(v) if log else v
        return lo_px + (x - lo) / (hi - lo) * (hi_px - lo_px)

    return f


def _svg(
    title: str,
    points: list[tuple[float, float, str]],
    *,
    line: list[tuple[float, float]] | None = None,
    x_label: str = "",
    log_x: bool = False,
) -> str:
    xs = [p[0] for p in points] + [p[0] for p in line or []]
    sx = _scale(xs, PAD, W - 10, log=log_x)
    sy = _scale([0.0, 1.0], H - PAD, 10)
    parts = [
        f'<svg width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}">',
        f'<rect x="{PAD}" y="10" width="{W - PAD - 10}" height="{H - PAD - 10}" fill="none" stroke="#ccc"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = sy(tick)
        parts.append(f'<text x="4" y="{y + 4:.0f}" font-size="10">{tick:.1f}</text>')
    if line:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#333" stroke-width="1.5"/>')
    for x, y, color in points:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{color}" fill-opacity="0.8"/>')
    parts.append(f'<text x="{W / 2:.0f}" y="{H - 6}" font-size="11" text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append("</svg>")
    return f"<figure><figcaption>{html.escape(title)}</figcaption>{''.join(parts)}</figure>"


def render(output: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    done = [r for r in rows if r["accuracy"] is not None]
    order = [
        (float(i + 1), float(r["accuracy"]), COLORS.get(_optimizer(r), "#777"))
        for i, r in enumerate(rows)
        if r["accuracy"] is not None
    ]
    best_line, best_so_far = [], -1.0
    for i, r in enumerate(rows, start=1):
        if r["accuracy"] is not None:
            best_so_far = max(best_so_far, r["accuracy"])
        if best_so_far >= 0:
            best_line.append((float(i), best_so_far))
    figures = [
        _svg(
            "Validation accuracy per training job, in launch order; line: best so far",
            order,
            line=best_line,
            x_label="training job",
        )
    ]
    names = sorted({k for r in done for k in r["hyperparameters"] if k != "optimizer"})
    for name in names:
        pts = []
        for r in done:
            value = r["hyperparameters"].get(name)
            if value is not None:
                pts.append((float(value), r["accuracy"], COLORS.get(_optimizer(r), "#777")))
        positive = all(p[0] > 0 for p in pts)
        spread = max(p[0] for p in pts) / min(p[0] for p in pts) if pts and positive else 0
        figures.append(
            _svg(f"accuracy vs {name}", pts, x_label=name + (" (log)" if spread > 100 else ""), log_x=spread > 100)
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
<p>Best: <b>{best.accuracy:.4f}</b> by {html.escape(best.training_job_name)} ({html.escape(best.optimizer)});
registered as {html.escape(registered.model_package_arn)} ({html.escape(registered.approval_status)}).</p>
<p>Cost: worst case allowed ${run.cost.worst_case_usd:,.2f} ({html.escape(run.cost.basis)}); training billed
{billed} at GPU prices.</p>
<p>{legend}</p>{"".join(figures)}
<h2>Leaderboard</h2><table><tr><th>#</th><th>accuracy</th><th>status</th><th>optimizer</th><th>training job</th><th>hyperparameters</th></tr>{table}</table>
</body></html>"""


def write_report(pipeline: Any, output: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write report.html beside the metrics document (S3) and under local-run/."""
    text = render(output, rows)
    metrics_uri = output["registered"]["metrics_uri"]
    bucket, _, key = metrics_uri.removeprefix("s3://").partition("/")
    report_key = key.rsplit("/", 1)[0] + "/report.html"
    pipeline.client("s3").put_object(Bucket=bucket, Key=report_key, Body=text.encode(), ContentType="text/html")
    local_path = ROOT / "local-run" / "report.html"
    local_path.write_text(text)
    return {"s3_uri": f"s3://{bucket}/{report_key}", "local_path": str(local_path)}
