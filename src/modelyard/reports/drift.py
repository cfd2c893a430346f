"""Drift and monitoring reports as self-contained HTML pages (and JSON).

Every number carries its exact value: ``<td data-stat="psi" data-column="temp"
data-value="...">``; window-level numbers also carry ``data-window="2012-03"``. The JSON is
the report model itself (``DriftReport`` / ``MonitorReport``).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.ops.monitoring.drift import DriftReport, FeatureDrift, SetAside
from modelyard.ops.monitoring.monitor import MonitorReport, WindowReport
from modelyard.reports.html import (
    PALETTE,
    PlotSeries,
    badge,
    escape,
    fmt,
    fmt_share,
    page,
    stat,
    svg_grouped_bars,
    svg_plot,
)

__all__ = ["drift_json", "drift_text", "monitor_json", "render_drift_html", "render_monitor_html"]


def drift_json(report: DriftReport) -> str:
    return report.model_dump_json(indent=2)


def monitor_json(report: MonitorReport) -> str:
    return report.model_dump_json(indent=2)


_TEXT_STATS = (
    ("psi", "psi"), ("wasserstein", "wasserstein"), ("jensen_shannon", "jensen_shannon"),
    ("missing_delta", "missing_delta"), ("new_category_share", "new_category_share"),
    ("p_value", "p_value"),
)  # fmt: skip


def _text_row(f: FeatureDrift) -> str:
    # the numbers of the HTML table, formatted alike (signed missing_delta, 4 digits)
    values = ((label, getattr(f, field)) for label, field in _TEXT_STATS)
    shown = ", ".join(f"{label} {fmt(v)}" for label, v in values if v is not None)
    return f" {'!' if f.drifted else ' '} {f.column:<24} {f.status:<18} {shown}"


def drift_text(report: DriftReport, *, reference: str, current: str) -> str:
    """The console summary of ``modelyard drift``: the verdict, one line per feature, then the
    label drift of the target apart. Numbers are those of the HTML report, formatted alike."""
    lines = [
        f"{report.status.upper().replace('_', ' ')}: {len(report.drifted_features)} of "
        f"{len(report.features)} features drifted ({reference} → {current})"
    ]
    lines += [_text_row(f) for f in report.features]
    if report.target is not None:
        t = report.target
        lines.append(f"label drift (target '{t.column}', not counted above): {t.status}")
        lines.append(_text_row(t))
    lines += [f"note: {set_aside_text(a)}" for a in report.set_aside]
    return "\n".join(lines)


def set_aside_text(aside: SetAside) -> str:
    """One sentence on the lines of a file that were not rows."""
    many = aside.lines != 1
    return (
        f"{aside.lines:,} line{'s' if many else ''} of the {aside.table} file {'are' if many else 'is'}"
        f" not {'rows' if many else 'a row'}, left out (first: {aside.first})"
    )


def _status(status: str) -> str:
    kind = {"drift": "critical", "ok": "info", "insufficient_data": "warning"}.get(status, "")
    return badge(status.replace("_", " "), kind)


def _shares_plot(f: FeatureDrift) -> str:
    """Reference and current share of each bin (numbers: the reference's quantile bins, by
    their edges) or category, as grouped bars."""
    if not f.bins:
        return ""
    return svg_grouped_bars(
        f.bins,
        [("reference", f.reference_shares), ("current", f.current_shares)],
        stat_names=["reference_share", "current_share"],
        column=f.column,
        title=f"{f.column}: share of rows per {'bin' if f.kind == 'numeric' else 'category'}",
    )


def _feature_rows(features: list[FeatureDrift], window: str | None = None) -> str:
    rows = []
    for f in features:
        c = f.column

        def s(value: float | None, name: str, column: str = c) -> str:
            cell = stat(value, name=name, column=column)
            return (
                cell.replace("<td ", f'<td data-window="{escape(window)}" ', 1) if window else cell
            )

        rows.append(
            f"<tr><td>{escape(c)}</td><td>{escape(f.kind)}</td><td>{_status(f.status)}</td>"
            f"{s(f.psi, 'psi')}{s(f.wasserstein, 'wasserstein')}{s(f.jensen_shannon, 'jensen_shannon')}"
            f"{s(f.missing_delta, 'missing_delta')}{s(f.new_category_share, 'new_category_share')}"
            f"{s(f.p_value, 'p_value')}<td class='wrap'>{escape('; '.join(f.reasons))}</td></tr>"
        )
    return (
        "<table><thead><tr><th>column</th><th>kind</th><th>status</th><th>PSI</th>"
        "<th>Wasserstein / std</th><th>Jensen-Shannon</th><th>Δ missing</th><th>new categories</th>"
        "<th>p-value (KS / χ²)</th><th class='wrap'>why</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _thresholds(report: DriftReport) -> str:
    t = report.thresholds
    return (
        f"<p>Verdicts on effect size: PSI &gt; {t.psi:g}, Wasserstein / reference std &gt; "
        f"{t.wasserstein:g}, Jensen-Shannon &gt; {t.jensen_shannon:g}, |Δ missing| &gt; "
        f"{t.missing_rate:g}, new categories &gt; {t.new_category_rate:g}; an effect counts when "
        f"its test (KS, χ², two-proportion z) also has a p-value under {t.p_value:g}, else it is "
        f"sampling noise. The dataset drifted when at least {t.share:g} of the features did; "
        f"the target is label drift, apart. Fewer than {report.min_rows} rows: insufficient "
        f"data.</p>"
    )


def render_drift_html(report: DriftReport, *, title: str = "Drift report") -> str:
    """Two tables compared: verdict, one row per column, and each column's distributions."""
    notes = "".join(
        f"<li data-set-aside='{a.table}'><span class='badge warning'>set aside</span>"
        f"<span>{escape(set_aside_text(a))}</span></li>"
        for a in report.set_aside
    )
    notes = f"<ul class='alerts' style='margin-top:12px'>{notes}</ul>" if notes else ""
    head = (
        f"<section id='summary'><h2>Summary {_status(report.status)}</h2><table><tbody>"
        f"<tr><td>reference rows</td>{stat(report.reference_rows, name='reference_rows')}</tr>"
        f"<tr><td>current rows</td>{stat(report.current_rows, name='current_rows')}</tr>"
        f"<tr><td>drifted features</td>{stat(len(report.drifted_features), name='drifted_features')}</tr>"
        f"<tr><td>drift share</td>{stat(report.drift_share, name='drift_share', text=fmt_share(report.drift_share))}</tr>"
        f"</tbody></table>{notes}{_thresholds(report)}</section>"
    )
    table = f"<section id='features'><h2>Features</h2>{_feature_rows(report.features)}</section>"
    nav = [("summary", "Summary"), ("features", "Features")]
    shown = list(report.features)
    if report.target is not None:
        t = report.target
        table += (
            f"<section id='label-drift'><h2>Label drift {_status(t.status)}</h2>"
            f"<p>The target <code>{escape(t.column)}</code>, judged like a feature but not "
            f"counted in the features' drift share.</p>{_feature_rows([t])}</section>"
        )
        nav.append(("label-drift", "Label drift"))
        shown.append(t)
    plots = "".join(
        f"<div class='card'><h3>{escape(f.column)}{_status(f.status)}</h3>{_shares_plot(f)}</div>"
        for f in shown
    )
    body = (
        head
        + table
        + (
            "<section id='distributions'><h2>Distributions <span class='muted'>(share of rows per "
            "bin of the reference's quantiles, or per category)</span></h2>"
            f"<div class='cards charts'>{plots}</div></section>"
        )
    )
    return page(
        title, body, subtitle=f"{len(report.features)} features compared",
        nav=[*nav, ("distributions", "Distributions")],
    )  # fmt: skip


def _trend(
    report: MonitorReport,
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_label: str,
    title: str,
) -> str:
    xs = [float(i) for i in range(len(report.windows))]
    plotted = []
    for i, (name, ys) in enumerate(series):
        values = [float("nan") if y is None else float(y) for y in ys]
        plotted.append(
            PlotSeries(name, xs, values, kind="linepoints", color=PALETTE[i % len(PALETTE)])
        )
    if not plotted or not xs:
        return ""
    chart = svg_plot(
        plotted, width=420, height=250, y_label=y_label, x_label="window",
        x_names=[w.label for w in report.windows], title=title,
    )  # fmt: skip
    return f"<div class='card'><h3>{escape(title)}</h3>{chart}</div>" if chart else ""


def _window_row(w: WindowReport, metric: str | None) -> str:
    def s(value: float | int | None, name: str, text: str | None = None) -> str:
        return stat(value, name=name, text=text).replace(
            "<td ", f'<td data-window="{escape(w.label)}" ', 1
        )

    return (
        f"<tr><td>{escape(w.label)}</td>{s(w.rows, 'rows')}{s(w.served, 'served')}"
        f"<td>{_status(w.drift.status)}</td>"
        f"{s(w.drift.drift_share, 'drift_share', fmt_share(w.drift.drift_share))}"
        f"<td class='wrap'>{escape(', '.join(w.drift.drifted_features))}</td>"
        f"{s(w.rejected_share, 'rejected_share', fmt_share(w.rejected_share))}"
        f"{s(w.flagged_share, 'flagged_share', fmt_share(w.flagged_share))}"
        f"{s(w.labelled, 'labelled')}"
        f"<td>{_status(w.label_drift.status) if w.label_drift else '—'}</td>"
        f"{s(w.metric, 'metric')}{s(w.performance_drop, 'performance_drop')}</tr>"
    )


def render_monitor_html(report: MonitorReport, *, title: str = "Monitoring report") -> str:
    """Trends over the windows (drift, prediction drift, data quality, performance) as plots,
    one table row per window, and each window's per-feature table."""
    ws = report.windows
    features = [f.column for f in ws[0].drift.features] if ws else []
    psi = [(c, [w.drift.feature(c).psi for w in ws]) for c in features]
    wass = [(c, [w.drift.feature(c).wasserstein for w in ws]) for c in features]
    js = [(c, [w.drift.feature(c).jensen_shannon for w in ws]) for c in features]
    outputs = sorted({f.column for w in ws for f in w.prediction_drift})
    pred = [
        (o, [next((f.psi for f in w.prediction_drift if f.column == o), None) for w in ws])
        for o in outputs
    ]
    metric = report.metric or "metric"
    perf = [(metric, [w.metric for w in ws])]
    if report.reference_metric is not None:
        perf.append((f"{metric} at training", [report.reference_metric for _ in ws]))
    quality = [
        ("rejected", [w.rejected_share for w in ws]),
        ("flagged", [w.flagged_share for w in ws]),
    ]
    alerts = "".join(f"<li>{escape(a)}</li>" for a in report.alerts) or "<li>none</li>"
    sampled = (
        f"<tr><td>reference sampled (seeded) from</td>"
        f"{stat(report.reference_total_rows, name='reference_total_rows')}</tr>"
        if report.reference_total_rows is not None
        else ""
    )
    summary = (
        f"<section id='summary'><h2>Summary</h2><table><tbody>"
        f"<tr><td>windows</td>{stat(len(ws), name='windows')}</tr>"
        f"<tr><td>windowed by</td><td>{escape(report.window_by)} ({escape(report.window_size)})</td></tr>"
        f"<tr><td>log records</td>{stat(report.log_rows, name='log_rows')}</tr>"
        f"<tr><td>reference rows</td>{stat(report.reference_rows, name='reference_rows')}</tr>"
        f"{sampled}"
        f"<tr><td>{escape(metric)} at training</td>{stat(report.reference_metric, name='reference_metric')}</tr>"
        f"<tr><td>prediction baseline</td><td>{escape(report.prediction_baseline)}</td></tr>"
        f"</tbody></table><h3>Alerts</h3><ul>{alerts}</ul></section>"
    )
    trends = (
        "<section id='trends'><h2>Trends over windows</h2><div class='cards charts'>"
        + _trend(
            report,
            [("drift share", [w.drift.drift_share for w in ws])],
            "share",
            "Share of drifted features",
        )
        + _trend(report, psi, "PSI", "PSI by feature")
        + _trend(
            report,
            [x for x in wass if any(v is not None for v in x[1])],
            "distance / std",
            "Wasserstein by feature",
        )
        + _trend(
            report,
            [x for x in js if any(v is not None for v in x[1])],
            "distance",
            "Jensen-Shannon by feature",
        )
        + _trend(report, pred, "PSI", "Prediction drift")
        + _trend(report, perf, metric, "Performance on labelled records")
        + _trend(report, quality, "share", "Rejected / flagged records")
        + "</div></section>"
    )
    table = (
        "<section id='windows'><h2>Windows</h2><table><thead><tr><th>window</th><th>rows</th>"
        "<th>served</th><th>drift</th><th>drift share</th><th>drifted features</th><th>rejected</th>"
        f"<th>flagged</th><th>labelled</th><th>label drift</th><th>{escape(metric)}</th><th>drop</th>"
        "</tr></thead><tbody>"
        + "".join(_window_row(w, report.metric) for w in ws)
        + "</tbody></table></section>"
    )
    details = "".join(
        f"<details><summary>{escape(w.label)} {_status(w.drift.status)}</summary>"
        f"{_feature_rows(w.drift.features, w.label)}"
        + (
            f"<h4>Label drift</h4>{_feature_rows([w.label_drift], w.label)}"
            if w.label_drift is not None
            else ""
        )
        + "</details>"
        for w in ws
    )
    body = (
        summary + trends + _estimate_section(report) + table
        + f"<section id='details'><h2>Per window</h2>{details}</section>"
    )  # fmt: skip
    return page(
        title, body, subtitle=f"{len(ws)} windows, {report.log_rows} logged records",
        nav=[("summary", "Summary"), ("trends", "Trends"), ("estimated", "Estimated"), ("windows", "Windows"), ("details", "Per window")],
    )  # fmt: skip


def _estimate_section(report: MonitorReport) -> str:
    """Performance estimated before labels (CBPE) beside the realised one, over the windows:
    a chart of the primary metric and a table of every estimated metric."""
    ws = report.windows
    est = report.estimation
    head = "<section id='estimated'><h2>Estimated performance (before labels)</h2>"
    if not est.available:
        return f"{head}<p>Not estimated: {escape(est.reason)}.</p></section>"
    metric = report.metric or "metric"
    series: list[tuple[str, Sequence[float | None]]] = [
        (f"{metric} estimated", [w.estimated.get(metric) for w in ws]),
        (f"{metric} realised (labelled)", [w.performance.get(metric) for w in ws]),
    ]
    if report.reference_metric is not None:
        series.append((f"{metric} at training", [report.reference_metric for _ in ws]))
    names = [m for m in est.metrics if any(m in w.estimated for w in ws)]

    def cell(w: WindowReport, value: float | int | None, name: str) -> str:
        return stat(value, name=name).replace("<td ", f'<td data-window="{escape(w.label)}" ', 1)

    rows = "".join(
        f"<tr><td>{escape(w.label)}</td>{cell(w, w.estimated_rows, 'estimated_rows')}"
        + "".join(
            cell(w, w.estimated.get(m), f"estimated_{m}") + cell(w, w.performance.get(m), m)
            for m in names
        )
        + f"{cell(w, w.estimated_drop, 'estimated_drop')}</tr>"
        for w in ws
    )
    cols = "".join(f"<th>{escape(m)} estimated</th><th>{escape(m)} realised</th>" for m in names)
    return (
        f"{head}<p>Expected from the model's calibrated probabilities of every served record "
        f"(confidence-based performance estimation; {escape(est.reason)}), before any label "
        f"arrives; realised where labels came through /feedback. It holds while P(label | "
        f"inputs) stays as in training: covariate shift is seen, concept drift is not.</p>"
        + _trend(report, series, metric, f"{metric}: estimated vs realised")
        + "<table><thead><tr><th>window</th><th>estimated on</th>"
        + cols
        + "<th>estimated drop</th></tr></thead><tbody>"
        + rows
        + "</tbody></table></section>"
    )
