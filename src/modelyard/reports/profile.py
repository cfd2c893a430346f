"""The data profile as a self-contained HTML page and as JSON.

Every number on the page comes from the :class:`~modelyard.data.profile.Profile` and carries
its exact value: ``<td data-stat="mean" data-column="price" data-value="...">``. Dataset-level
numbers have no ``data-column``; correlation cells carry ``data-column`` and ``data-column2``.

A number the profile estimated with a sketch (a large table's distinct count, quantiles, top
value counts, duplicate rows) is shown as ``≈ 1.2M`` with the sketch and its error bound in a
tooltip and in a note under its card (``data-estimated="distinct"``); exact numbers are unmarked.
"""

from __future__ import annotations

from modelyard.data.profile import (
    HIGH_CARDINALITY,
    HIGH_MISSING_SHARE,
    IMBALANCE_INFO,
    LEAKAGE_PAIR_R2,
    LEAKAGE_SCORE,
    OUTLIER_SHARE,
    SKEW_LIMIT,
    ColumnProfile,
    Estimate,
    Profile,
)
from modelyard.reports.html import (
    badge,
    escape,
    fmt,
    fmt_bytes,
    fmt_share,
    page,
    stat,
    svg_bars,
    svg_heatmap,
    svg_histogram,
)

__all__ = ["profile_json", "render_profile_html"]

SHOWN_ALERTS = 10
"""Alerts listed in the overview (most severe first); the others are folded under them."""


def profile_json(profile: Profile) -> str:
    """The profile as indented JSON (non-finite floats become ``null``)."""
    return profile.model_dump_json(indent=2)


def _metric(
    label: str,
    value: int | float | None,
    name: str,
    *,
    text: str | None = None,
    sub: str = "",
    estimate: Estimate | None = None,
) -> str:
    sub_html = f'<div class="s">{sub}</div>' if sub else ""
    title = ""
    if estimate is not None:
        text = "≈ " + (text if text is not None else fmt(value))
        title = f' title="{escape("estimated: " + estimate.describe())}"'
        sub_html += (
            f'<div class="s" data-estimated="{escape(name)}">{escape(estimate.describe())}</div>'
        )
    return (
        f'<div class="metric"{title}><div class="k">{escape(label)}</div>'
        f"{stat(value, name=name, tag='div', cls='v', text=text)}{sub_html}</div>"
    )


def _overview(p: Profile) -> str:
    d = p.dataset
    metrics = [
        _metric("Rows", d.rows, "rows"),
        _metric("Columns", d.columns, "columns"),
        _metric(
            "Missing cells",
            d.missing_cells,
            "missing_cells",
            sub=stat(
                d.missing_cells_share,
                name="missing_cells_share",
                tag="span",
                text=fmt_share(d.missing_cells_share),
            )
            + " of cells",
        ),
        _metric(
            "Duplicate rows",
            d.duplicate_rows,
            "duplicate_rows",
            sub=stat(
                d.duplicate_share,
                name="duplicate_share",
                tag="span",
                text=fmt_share(d.duplicate_share),
            )
            + " of rows",
            estimate=d.estimated.get("duplicate_rows"),
        ),
        _metric("Memory", d.memory_bytes, "memory_bytes", text=fmt_bytes(d.memory_bytes)),
        _metric("Quality score", d.quality_score, "quality_score", text=fmt_share(d.quality_score)),
    ]
    if p.target:
        metrics.append(
            f'<div class="metric"><div class="k">Target</div><div class="v">'
            f'{escape(p.target)}</div><div class="s">{escape(p.task or "")}</div></div>'
        )
    if p.alerts:
        items = [
            f'<li data-alert="{escape(a.kind)}" data-severity="{escape(a.severity)}">'
            f"{badge(a.severity, a.severity)}{badge(a.kind.replace('_', ' '), 'kind')}"
            f"<span>{escape(a.message)}</span></li>"
            for a in p.alerts
        ]
        alerts = f'<ul class="alerts">{"".join(items[:SHOWN_ALERTS])}</ul>'
        if len(items) > SHOWN_ALERTS:  # the rest folded, so the sections below stay in view
            alerts += (
                f'<details class="more"><summary>{len(items) - SHOWN_ALERTS} more alerts'
                f'</summary><ul class="alerts">{"".join(items[SHOWN_ALERTS:])}</ul></details>'
            )
    else:
        alerts = '<p class="muted">No alerts.</p>'
    counts = {s: sum(1 for a in p.alerts if a.severity == s) for s in ("critical", "warning")}
    head = (
        f"Alerts <span class='muted'>({len(p.alerts)}: {counts['critical']} critical, "
        f"{counts['warning']} warnings)</span>"
    )
    sampled = ""
    if p.sample_rows:
        what = "Target relationship and leakage checks"
        if p.correlations is not None and p.correlations.rows_used == p.sample_rows:
            what = "Correlations, target relationship and leakage checks"
        sampled = (
            f'<p class="muted" data-sampled="{p.sample_rows}">{what} use a seeded sample of '
            f"{fmt(p.sample_rows)} rows; every other statistic uses all rows.</p>"
        )
    if d.estimated or any(c.estimated for c in p.columns):
        sampled += (
            '<p class="muted" data-estimates="1">Numbers marked ≈ are estimated by mergeable '
            "sketches (the table is too large to hold them exactly); each states its sketch and "
            "error bound. Every unmarked number is exact.</p>"
        )
    return (
        f'<section id="overview"><h2>Overview</h2><div class="metrics">{"".join(metrics)}</div>'
        f'{sampled}<h2 id="alerts">{head}</h2>{alerts}</section>'
    )


def _row(
    label: str,
    value: int | float | None,
    name: str,
    column: str,
    text: str | None = None,
    estimate: Estimate | None = None,
) -> str:
    if estimate is None:
        return f"<td>{escape(label)}</td>{stat(value, name=name, column=column, text=text)}"
    shown = "≈ " + (text if text is not None else fmt(value))
    return (
        f'<td title="{escape("estimated: " + estimate.describe())}">{escape(label)}</td>'
        f"{stat(value, name=name, column=column, text=shown)}"
    )


_ESTIMATED = {
    "distinct": "distinct count",
    "quantiles": "quantiles, IQR and outlier fences",
    "top": "top value counts",
}


def _pairs(cells: list[str]) -> str:
    """Label/value cells laid out two pairs per table row."""
    out = []
    for j in range(0, len(cells), 2):
        second = cells[j + 1] if j + 1 < len(cells) else "<td></td><td></td>"
        out.append(f"<tr>{cells[j]}{second}</tr>")
    return "".join(out)


def _card(c: ColumnProfile, p: Profile) -> str:
    n = c.name
    rows = [
        _row("Count", c.count, "count", n),
        _row("Missing", c.missing, "missing", n),
        _row("Missing share", c.missing_share, "missing_share", n, fmt_share(c.missing_share)),
        _row("Distinct", c.distinct, "distinct", n, estimate=c.estimated.get("distinct")),
    ]
    qest = c.estimated.get("quantiles")
    oest = c.estimated.get("outliers")  # counted by the quantile sketch, like the quartiles
    chart = ""
    extra = ""
    if c.numeric is not None:
        s = c.numeric
        q = s.quantiles
        rows += [
            _row("Mean", s.mean, "mean", n),
            _row("Std", s.std, "std", n),
            _row("Min", s.min, "min", n),
            _row("1%", q.p1, "p1", n, estimate=qest),
            _row("5%", q.p5, "p5", n, estimate=qest),
            _row("25%", q.p25, "p25", n, estimate=qest),
            _row("Median", q.p50, "p50", n, estimate=qest),
            _row("75%", q.p75, "p75", n, estimate=qest),
            _row("95%", q.p95, "p95", n, estimate=qest),
            _row("99%", q.p99, "p99", n, estimate=qest),
            _row("Max", s.max, "max", n),
            _row("Skew", s.skew, "skew", n),
            _row("Kurtosis", s.kurtosis, "kurtosis", n),
            _row("Zeros", s.zeros, "zeros", n),
            _row("Negatives", s.negatives, "negatives", n),
            _row("Outliers (1.5·IQR)", s.outliers, "outliers", n, estimate=oest),
        ]
        if s.infinite:
            rows.append(_row("Infinite", s.infinite, "infinite", n))
        if s.histogram is not None:
            chart = svg_histogram(s.histogram.edges, s.histogram.counts, title=f"histogram of {n}")
    elif c.temporal is not None:
        t = c.temporal
        rows += [
            f"<td>Min</td><td data-stat='min' data-column='{escape(n)}'>"
            f"{escape(t.min or '—')}</td>",
            f"<td>Max</td><td data-stat='max' data-column='{escape(n)}'>"
            f"{escape(t.max or '—')}</td>",
        ]
        if t.histogram is not None:
            chart = svg_histogram(
                t.histogram.edges,
                t.histogram.counts,
                labels=t.histogram.labels,
                title=f"histogram of {n}",
            )
    elif c.categorical is not None:
        top = c.categorical.top
        if top:
            items = [(v.value, float(v.count)) for v in top]
            texts = [fmt_share(v.share) for v in top]
            if c.categorical.other_count:
                items.append(("(other values)", float(c.categorical.other_count)))
                texts.append(fmt_share(c.categorical.other_count / c.count if c.count else 0))
            chart = svg_bars(items, value_text=texts, title=f"top values of {n}")
            approx = "≈ " if "top" in c.estimated else ""
            top_rows = "".join(
                f"<tr><td title='{escape(v.value)}'>{escape(_short(v.value))}</td>"
                f"{stat(v.count, name='top_count', column=n, text=approx + fmt(v.count))}"
                f"{stat(v.share, name='top_share', column=n, text=approx + fmt_share(v.share))}"
                "</tr>"
                for v in top
            )
            extra = (
                f'<table class="stats top"><tr><th>Value</th><th>Count</th><th>Share</th></tr>'
                f"{top_rows}</table>"
            )
    qual = c.quality
    rows += [
        _row("Completeness", qual.completeness, "completeness", n, fmt_share(qual.completeness)),
        _row("Validity", qual.validity, "validity", n, fmt_share(qual.validity)),
    ]
    if qual.uniqueness is not None:
        rows.append(
            _row("Uniqueness", qual.uniqueness, "uniqueness", n, fmt_share(qual.uniqueness))
        )
    if c.target_association is not None:
        rows.append(_row("Target association", c.target_association, "target_association", n))
    badges = badge(c.type, "kind") + badge(c.role, "kind")
    if c.constant:
        badges += badge("constant", "warning")
    if any(n in a.columns and a.kind == "leakage" for a in p.alerts):
        badges += badge("leakage", "critical")
    score = stat(
        qual.score,
        name="quality_score",
        column=n,
        tag="span",
        text="quality " + fmt_share(qual.score),
    )
    chart_html = chart or '<p class="muted">No values to chart.</p>'
    if c.estimated:
        notes = "; ".join(
            f'<span data-estimated="{escape(k)}">{escape(_ESTIMATED.get(k, k))}: '
            f"{escape(e.describe())}</span>"
            for k, e in c.estimated.items()
        )
        extra += f'<p class="muted est">Estimated (≈): {notes}.</p>'
    return (
        f'<div class="card" id="col-{escape(n)}"><div class="card-head"><h3>{escape(n)}</h3>'
        f'{badges}<span class="score">{score}</span></div>'
        f'<div class="chartbox">{chart_html}</div>'
        f'<div class="scroll"><table class="stats">{_pairs(rows)}</table>{extra}</div></div>'
    )


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _correlations(p: Profile) -> str:
    if p.correlations is None:
        return ""
    c = p.correlations
    return (
        f'<section id="correlations"><h2>Correlations <span class="muted">(Pearson, '
        f"{len(c.columns)} numeric columns, pairwise complete)</span></h2>"
        f'<div class="heatwrap">'
        f"{svg_heatmap(c.columns, c.matrix, title='correlations', legend='Pearson r')}"
        f"</div></section>"
    )


_METHODS = {
    "pearson_abs": "|Pearson r|",
    "correlation_ratio": "correlation ratio η",
    "cramers_v": "Cramér's V",
}


def _target(p: Profile) -> str:
    if not p.target_associations:
        return ""
    leaky = {n for a in p.alerts if a.kind == "leakage" for n in a.columns}
    rows = "".join(
        f"<tr><td>{j + 1}</td><td>{escape(a.column)}"
        f"{' ' + badge('leakage', 'critical') if a.column in leaky else ''}</td>"
        f"<td>{escape(a.role)}</td><td>{escape(_METHODS[a.method])}</td>"
        f"{stat(a.score, name='association', column=a.column)}"
        f'<td style="width:40%"><div class="bar" style="width:{a.score * 100:.1f}%"></div></td>'
        f"</tr>"
        for j, a in enumerate(p.target_associations)
    )
    return (
        f'<section id="target"><h2>Target relationship <span class="muted">'
        f"(association with '{escape(p.target or '')}', 0 = none, 1 = determined)"
        f'</span></h2><div class="scroll"><table class="wide sortable"><thead><tr><th>#</th>'
        f"<th>Column</th><th>Role</th><th>Method</th><th>Score</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _balance(p: Profile) -> str:
    b = p.class_balance
    if b is None:
        return ""
    shown = b.classes[:30]
    chart = svg_bars(
        [(c.value, float(c.count)) for c in shown],
        value_text=[fmt_share(c.share) for c in shown],
        width=640,
        label_width=160,
        title="class counts",
    )
    rows = "".join(
        f"<tr><td>{escape(c.value)}</td>{stat(c.count, name='class_count', column=c.value)}"
        f"{stat(c.share, name='class_share', column=c.value, text=fmt_share(c.share))}</tr>"
        for c in b.classes
    )
    metrics = (
        _metric("Classes", len(b.classes), "classes")
        + _metric(
            "Minority share",
            b.minority_share,
            "minority_share",
            text=fmt_share(b.minority_share),
            sub=escape(b.minority),
        )
        + _metric(
            "Imbalance ratio",
            b.imbalance_ratio,
            "imbalance_ratio",
            sub=escape(b.majority) + " : " + escape(b.minority),
        )
    )
    more = f" (first 30 of {len(b.classes)} shown in the chart)" if len(b.classes) > 30 else ""
    return (
        f'<section id="balance"><h2>Class balance <span class="muted">{escape(more)}</span>'
        f'</h2><div class="metrics">'
        f"{metrics}"
        f'</div><div class="card-body"><div class="scroll"><table class="wide sortable">'
        f"<thead><tr><th>Class</th><th>Count</th><th>Share</th></tr></thead><tbody>{rows}"
        f"</tbody></table></div><div>{chart}</div></div></section>"
    )


def render_profile_html(profile: Profile, *, title: str = "Data profile") -> str:
    """The profile as one self-contained HTML page (inline CSS and SVG, no external URL)."""
    p = profile
    cards = "".join(_card(c, p) for c in p.columns)
    # the dataset-level sections first, then the (long) per-column details
    body = (
        _overview(p)
        + _target(p)
        + _balance(p)
        + _correlations(p)
        + f'<section id="columns"><h2>Columns</h2><div class="cards">{cards}</div></section>'
    )
    footer = (
        f"<footer><p><b>Quality score.</b> {escape(p.quality_formula)}</p><p><b>Alert rules.</b> "
        f"Leakage: one column determines the target (score or Goodman-Kruskal λ ≥ "
        f"{LEAKAGE_SCORE}), or the target is a linear combination of two columns (R² ≥ "
        f"{LEAKAGE_PAIR_R2}). High missing ≥ {fmt_share(HIGH_MISSING_SHARE)}; high cardinality "
        f"> {HIGH_CARDINALITY} distinct values; skewed |skew| > {SKEW_LIMIT}; outliers > "
        f"{fmt_share(OUTLIER_SHARE)} of values beyond 1.5·IQR (neither for a two-valued "
        f"column: a flag); class imbalance ratio ≥ "
        f"{IMBALANCE_INFO}.</p></footer>"
    )
    d = p.dataset
    subtitle = f"{fmt(d.rows)} rows × {fmt(d.columns)} columns"
    if p.target:
        subtitle += f" · target '{p.target}' ({p.task})"
    nav = [("overview", "Overview"), ("alerts", "Alerts")]
    if p.target_associations:
        nav.append(("target", "Target relationship"))
    if p.class_balance is not None:
        nav.append(("balance", "Class balance"))
    if p.correlations is not None:
        nav.append(("correlations", "Correlations"))
    nav.append(("columns", "Columns"))
    html = page(title, body, subtitle=subtitle, nav=nav)
    return html.replace("</main>", "</main>" + footer, 1)
