"""Small helpers for self-contained HTML pages (shared by every modelyard report).

Everything a page needs is inline: CSS, a tiny script (table sorting), and charts drawn as
inline SVG. No URL to anything outside the page, so a report opens offline, from an e-mail
attachment or an artifact store alike.

Numbers: :func:`fmt` formats every number the same way (4 significant digits; counts in full
with thousands separators); :func:`stat` wraps a number in an element that carries the exact
value for machines, e.g. ``<td data-stat="mean" data-column="price" data-value="3932.7997">``.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CSS",
    "PlotSeries",
    "badge",
    "escape",
    "fmt",
    "fmt_bytes",
    "fmt_share",
    "nice_ticks",
    "page",
    "stat",
    "svg_bars",
    "svg_confusion",
    "svg_grouped_bars",
    "svg_heatmap",
    "svg_histogram",
    "svg_line",
    "svg_plot",
]

Number = int | float


def escape(text: object) -> str:
    """HTML-escape any value (quotes too, so the result is safe in attributes)."""
    return html.escape(str(text), quote=True)


def fmt(value: Number | None, digits: int = 4) -> str:
    """One number, formatted consistently: 4 significant digits, counts in full."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    mag = abs(value)
    if 10**digits <= mag < 1e15:
        return f"{value:,.0f}"
    if mag < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def fmt_share(value: float | None) -> str:
    """A share in [0, 1] as a percentage."""
    if value is None:
        return "—"
    if value == 0:
        return "0%"
    pct = value * 100
    if pct < 0.01:
        return "<0.01%"
    return f"{pct:.4g}%"


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.4g} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _data_value(value: Number | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def stat(
    value: Number | None,
    *,
    name: str,
    column: str | None = None,
    tag: str = "td",
    text: str | None = None,
    cls: str | None = None,
    path: str | None = None,
) -> str:
    """An element showing a number, with the exact value in ``data-value`` for machines.

    ``path``: where the value is in the page's JSON, as a JSON pointer (``data-path``).
    """
    attrs = f' data-stat="{escape(name)}"'
    if column is not None:
        attrs += f' data-column="{escape(column)}"'
    if path is not None:
        attrs += f' data-path="{escape(path)}"'
    attrs += f' data-value="{escape(_data_value(value))}"'
    if cls:
        attrs += f' class="{escape(cls)}"'
    shown = text if text is not None else fmt(value)
    return f"<{tag}{attrs}>{escape(shown)}</{tag}>"


def badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {escape(kind)}">{escape(text)}</span>'


# --------------------------------------------------------------------------- charts

_BLUE = "#3b6fd8"
_CHAR_W = 6.2
"""Width of a character of a 10 px label, generously (to size margins for labels)."""
_LEGEND_CHAR_W = 6.8
"""The same for an 11 px legend."""
_GRID = "#e4e7ec"
_MUTED = "#6b7280"
PALETTE = ["#3b6fd8", "#e4572e", "#17a398", "#f3a712", "#7e52a0", "#6b7280"]


def svg_histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    width: int = 560,
    height: int = 130,
    labels: Sequence[str] | None = None,
    title: str = "",
) -> str:
    """Vertical bars, one per bin; the tooltip of each bar gives its range and count."""
    if not counts:
        return ""
    pad_b, pad_t = 18, 6
    plot_h = height - pad_b - pad_t
    top = max(counts) or 1
    n = len(counts)
    bw = width / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "histogram")}" preserveAspectRatio="none">',
        f'<line x1="0" y1="{height - pad_b}" x2="{width}" y2="{height - pad_b}" stroke="{_GRID}"/>',
    ]
    for j, c in enumerate(counts):
        h = plot_h * c / top
        lo = labels[j] if labels else fmt(edges[j])
        hi = labels[j + 1] if labels else fmt(edges[j + 1])
        parts.append(
            f'<rect x="{j * bw + 0.5:.2f}" y="{height - pad_b - h:.2f}" '
            f'width="{max(bw - 1, 0.5):.2f}" height="{h:.2f}" fill="{_BLUE}">'
            f"<title>{escape(lo)} – {escape(hi)}: {escape(fmt(c))}</title></rect>"
        )
    first = labels[0] if labels else fmt(edges[0])
    last = labels[-1] if labels else fmt(edges[-1])
    parts.append(
        f'<text x="2" y="{height - 4}" class="axis">{escape(first)}</text>'
        f'<text x="{width - 2}" y="{height - 4}" class="axis" text-anchor="end">'
        f"{escape(last)}</text></svg>"
    )
    return "".join(parts)


def svg_bars(
    items: Sequence[tuple[str, float]],
    *,
    width: int = 560,
    bar_height: int = 18,
    label_width: int = 140,
    max_value: float | None = None,
    value_text: Sequence[str] | None = None,
    title: str = "",
) -> str:
    """Horizontal bars with a label on the left and the value on the right."""
    if not items:
        return ""
    gap = 4
    height = len(items) * (bar_height + gap)
    top = max_value if max_value is not None else max(v for _, v in items)
    top = top or 1.0
    value_w = 64
    plot_w = width - label_width - value_w
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "bar chart")}">'
    ]
    for j, (label, value) in enumerate(items):
        y = j * (bar_height + gap)
        w = max(plot_w * value / top, 0.0)
        short = label if len(label) <= 18 else label[:17] + "…"
        shown = value_text[j] if value_text else fmt(value)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 5}" class="label" '
            f'text-anchor="end">{escape(short)}<title>{escape(label)}</title></text>'
            f'<rect x="{label_width}" y="{y}" width="{w:.2f}" height="{bar_height}" '
            f'rx="2" fill="{_BLUE}"><title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text x="{label_width + w + 4:.2f}" y="{y + bar_height - 5}" class="value">'
            f"{escape(shown)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _diverging(v: float | None) -> str:
    """White at 0, blue towards −1, red towards +1."""
    if v is None or math.isnan(v):
        return "#f3f4f6"
    t = max(-1.0, min(1.0, v))
    if t >= 0:
        r, g, b = 255, round(255 - 170 * t), round(255 - 190 * t)
    else:
        r, g, b = round(255 + 200 * t), round(255 + 130 * t), 255
    return f"rgb({r},{g},{b})"


def svg_heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    cell: int | None = None,
    stat_name: str = "corr",
    title: str = "",
    legend: str = "Pearson r",
    max_width: int = 1200,
) -> str:
    """A square matrix in [−1, 1] (e.g. correlations); each cell carries its exact value.

    Column labels are written at −60° above the matrix, with room kept for the last ones on
    the right; a colour scale from −1 to +1 (``legend`` names it) is drawn below. ``cell``
    defaults to what fits ``max_width`` pixels (between 10 and 22).
    """
    n = len(labels)
    if n == 0:
        return ""
    chars = min(max(len(s) for s in labels), 22)
    label_w = round(chars * _CHAR_W) + 10
    if cell is None:
        cell = max(10, min(22, int((max_width - label_w * 1.5) / n)))
    # a label rotated by −60° reaches cos 60° of its length to the right, sin 60° upwards
    right = max(0, round(label_w * 0.5 - cell * 0.3)) + 4
    top = round(label_w * 0.87) + 4
    grid = n * cell
    legend_h = 44
    width = label_w + grid + right
    height = top + grid + legend_h
    parts = [
        f'<svg class="heatmap" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title or "heatmap")}">'
    ]
    for i, name in enumerate(labels):
        short = name if len(name) <= 22 else name[:21] + "…"
        y = top + i * cell + cell * 0.68
        x = label_w + i * cell + cell * 0.68
        parts.append(
            f'<text x="{label_w - 6}" y="{y:.1f}" class="label" text-anchor="end">'
            f"{escape(short)}<title>{escape(name)}</title></text>"
            f'<text transform="translate({x:.1f},{top - 6}) rotate(-60)" class="label">'
            f"{escape(short)}<title>{escape(name)}</title></text>"
        )
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            shown = fmt(v, 3) if v is not None else "n/a"
            parts.append(
                f'<rect x="{label_w + j * cell}" y="{top + i * cell}" width="{cell - 1}" '
                f'height="{cell - 1}" fill="{_diverging(v)}" data-stat="{escape(stat_name)}" '
                f'data-column="{escape(labels[i])}" data-column2="{escape(labels[j])}" '
                f'data-value="{escape(_data_value(v))}"><title>{escape(labels[i])} × '
                f"{escape(labels[j])}: {escape(shown)}</title></rect>"
            )
    # the colour scale: 21 steps from −1 to +1
    steps, step_w = 21, 9
    x0 = label_w
    y0 = top + grid + 12
    parts.append(f'<g class="legend" aria-label="colour scale: {escape(legend)}">')
    for k in range(steps):
        v = -1 + 2 * k / (steps - 1)
        parts.append(
            f'<rect x="{x0 + k * step_w}" y="{y0}" width="{step_w}" height="10" '
            f'fill="{_diverging(v)}"><title>{escape(legend)} {fmt(v, 2)}</title></rect>'
        )
    for v, anchor in ((-1.0, "start"), (0.0, "middle"), (1.0, "end")):
        x = x0 + (v + 1) / 2 * steps * step_w
        parts.append(
            f'<text x="{x:.1f}" y="{y0 + 22}" class="axis" text-anchor="{anchor}">'
            f"{'−1' if v < 0 else '+1' if v > 0 else '0'}</text>"
        )
    parts.append(
        f'<text x="{x0 + steps * step_w + 8}" y="{y0 + 9}" class="legend">{escape(legend)}</text>'
        f'<rect x="{x0 + steps * step_w + 8 + round(len(legend) * _LEGEND_CHAR_W) + 14}" y="{y0}" '
        f'width="10" height="10" fill="{_diverging(None)}"/>'
        f'<text x="{x0 + steps * step_w + 8 + round(len(legend) * _LEGEND_CHAR_W) + 28}" y="{y0 + 9}" '
        f'class="legend">not computed</text></g></svg>'
    )
    return "".join(parts)


def svg_grouped_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 400,
    bar: int = 7,
    share: bool = True,
    stat_names: Sequence[str] | None = None,
    column: str | None = None,
    title: str = "",
) -> str:
    """Horizontal bars grouped by label: one bar per series (e.g. reference and current
    shares of each bin or category), a legend above and a value axis below.

    Long labels are shortened (the tooltip keeps the whole label). With ``stat_names``, each
    bar carries ``data-stat`` (that series' name), ``data-column``, ``data-bin`` and its exact
    ``data-value``.
    """
    n = len(labels)
    if n == 0 or not series:
        return ""
    max_chars = 24
    shown = [s if len(s) <= max_chars else s[: max_chars - 1] + "…" for s in labels]
    label_w = round(max(len(s) for s in shown) * _CHAR_W) + 10
    k = len(series)
    group = k * bar + 6
    top, bottom, right = 22, 26, 12
    height = top + n * group + bottom
    values = [v for _, vs in series for v in vs if math.isfinite(v)]
    ticks = nice_ticks(0.0, max(values, default=0.0) or 1.0, 4)
    hi = ticks[-1] or 1.0
    plot_w = width - label_w - right

    def px(v: float) -> float:
        return label_w + plot_w * max(v, 0.0) / hi

    def text(v: float) -> str:
        return fmt_share(v) if share else fmt(v)

    parts = [
        f'<svg class="chart gbars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "grouped bar chart")}">'
    ]
    x = label_w
    for j, (name, _) in enumerate(series):
        color = PALETTE[j % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="5" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="14" class="legend">{escape(name)}</text>'
        )
        x += 28 + round(len(name) * _LEGEND_CHAR_W)
    axis_y = top + n * group
    for t in ticks:
        tx = px(t)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 2}" x2="{tx:.1f}" y2="{axis_y}" stroke="{_GRID}" '
            f'stroke-width="0.6"/><text x="{tx:.1f}" y="{axis_y + 12}" class="axis" '
            f'text-anchor="{"start" if t == ticks[0] else "end" if t == ticks[-1] else "middle"}">'
            f"{escape(text(t))}</text>"
        )
    for i, label in enumerate(labels):
        y = top + i * group
        parts.append(
            f'<text x="{label_w - 6}" y="{y + k * bar / 2 + 3.5:.1f}" class="label" '
            f'text-anchor="end">{escape(shown[i])}<title>{escape(label)}</title></text>'
        )
        for j, (name, vs) in enumerate(series):
            v = vs[i] if i < len(vs) else math.nan
            w = px(v) - label_w if math.isfinite(v) else 0.0
            attrs = ""
            if stat_names is not None:
                attrs = f' data-stat="{escape(stat_names[j])}"'
                if column is not None:
                    attrs += f' data-column="{escape(column)}"'
                attrs += f' data-bin="{escape(label)}" data-value="{escape(_data_value(v))}"'
            parts.append(
                f'<rect x="{label_w}" y="{y + j * bar}" width="{w:.2f}" height="{bar - 1}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"{attrs}><title>{escape(label)}, '
                f"{escape(name)}: {escape(text(v))}</title></rect>"
            )
    parts.append(
        f'<line x1="{label_w}" y1="{top - 2}" x2="{label_w}" y2="{axis_y}" stroke="#9ca3af"/></svg>'
    )
    return "".join(parts)


def svg_line(
    xs: Sequence[float],
    series: Iterable[tuple[str, Sequence[float]]],
    *,
    width: int = 480,
    height: int = 200,
    title: str = "",
) -> str:
    """One or more lines over a shared x axis (for curves: ROC, learning, drift over time)."""
    lines = list(series)
    if not xs or not lines:
        return ""
    pad = 28
    x0, x1 = min(xs), max(xs)
    ally = [y for _, ys in lines for y in ys if math.isfinite(y)]
    if not ally:
        return ""
    y0, y1 = min(ally), max(ally)
    dx = (x1 - x0) or 1.0
    dy = (y1 - y0) or 1.0
    palette = [_BLUE, "#e4572e", "#17a398", "#f3a712", "#7e52a0"]

    def px(x: float) -> float:
        return pad + (width - 2 * pad) * (x - x0) / dx

    def py(y: float) -> float:
        return height - pad - (height - 2 * pad) * (y - y0) / dy

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "line chart")}">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="{_GRID}"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="{_GRID}"/>',
        f'<text x="{pad}" y="{height - 8}" class="axis">{escape(fmt(x0))}</text>'
        f'<text x="{width - pad}" y="{height - 8}" class="axis" text-anchor="end">'
        f"{escape(fmt(x1))}</text>"
        f'<text x="2" y="{pad}" class="axis">{escape(fmt(y1))}</text>'
        f'<text x="2" y="{height - pad}" class="axis">{escape(fmt(y0))}</text>',
    ]
    for k, (name, ys) in enumerate(lines):
        pts = " ".join(
            f"{px(x):.2f},{py(y):.2f}" for x, y in zip(xs, ys, strict=False) if math.isfinite(y)
        )
        color = palette[k % len(palette)]
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (1, 2, 2.5 or 5 times a power of 10)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.5 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    k = 0
    while True:
        t = first + k * step
        ticks.append(round(t, 12))
        if t >= hi - 1e-9 * step:
            break
        k += 1
    return ticks


@dataclass(frozen=True)
class PlotSeries:
    """One series of :func:`svg_plot`.

    ``kind``: ``line``, ``step`` (post-step, e.g. best so far), ``points``, or ``linepoints``.
    ``tips``: one tooltip per point (points only).
    """

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    kind: Literal["line", "step", "points", "linepoints"] = "line"
    color: str | None = None
    dashed: bool = False
    hollow: bool = False
    tips: Sequence[str] | None = None


def _tick_digits(ticks: Sequence[float]) -> int:
    """Significant digits that tell every tick apart (3 at least, 8 at most)."""
    for digits in range(3, 9):
        if len({fmt(t, digits) for t in ticks}) == len(ticks):
            return digits
    return 8


def svg_plot(
    series: Sequence[PlotSeries],
    *,
    width: int = 420,
    height: int = 300,
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    legend: bool = True,
    integer_x: bool = False,
    x_names: Sequence[str] | None = None,
    title: str = "",
) -> str:
    """An x/y plot with axes, round ticks, grid lines, a legend and optional y = x line.

    Non-finite points are skipped. Ranges default to round ticks around the data.
    ``x_names``: the names of x = 0, 1, 2, ... (e.g. monitoring windows), written under the
    axis instead of numbers (every k-th one when they do not all fit).
    """
    finite = [
        (x, y)
        for s in series
        for x, y in zip(s.xs, s.ys, strict=False)
        if math.isfinite(x) and math.isfinite(y)
    ]
    if not finite:
        return ""
    xs_all = [x for x, _ in finite]
    ys_all = [y for _, y in finite]
    if x_range is not None:
        x_ticks = nice_ticks(*x_range)
        x0, x1 = x_range
    else:
        x_ticks = nice_ticks(min(xs_all), max(xs_all))
        x0, x1 = x_ticks[0], x_ticks[-1]
    if integer_x:
        x_ticks = [t for t in x_ticks if float(t).is_integer()] or x_ticks
    if x_names:
        x0, x1 = -0.5, len(x_names) - 0.5
    if y_range is not None:
        y_ticks = nice_ticks(*y_range)
        y0, y1 = y_range
    else:
        y_ticks = nice_ticks(min(ys_all), max(ys_all))
        y0, y1 = y_ticks[0], y_ticks[-1]
    dx = (x1 - x0) or 1.0
    dy = (y1 - y0) or 1.0
    x_digits, y_digits = _tick_digits(x_ticks), _tick_digits(y_ticks)
    named = [s for s in series if s.name]
    # the legend: one row after another, as many entries to a row as fit the width
    spots: dict[int, tuple[float, float]] = {}
    if legend and named:
        x, row = float(0), 0
        for k, s in enumerate(series):
            if not s.name:
                continue
            entry = 26 + _LEGEND_CHAR_W * len(s.name)
            if x and x + entry > width - 8:
                x, row = 0.0, row + 1
            spots[k] = (x, 16.0 * row)
            x += entry + 8
    rows = 1 + max((y for _, y in spots.values()), default=0.0) / 16
    top = round(10 + 16 * rows) if spots else 10
    left = 14 + 7 * max(len(fmt(t, y_digits)) for t in y_ticks) + (14 if y_label else 0)
    right, bottom = 14, 34 + (14 if x_label else 0)
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (x - x0) / dx

    def py(y: float) -> float:
        return top + ph - ph * (y - y0) / dy

    def x_text(t: float) -> str:
        return x_names[int(t)] if x_names else fmt(t, x_digits)

    if x_names:
        dx = x1 - x0
        fits = max(1, int(pw // (max(len(n) for n in x_names) * _CHAR_W + 12)))
        every = math.ceil(len(x_names) / fits)
        x_ticks = [float(k) for k in range(0, len(x_names), every)]

    parts = [
        f'<svg class="chart plot" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "plot")}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="{_GRID}"/>',
    ]
    for t in x_ticks:
        if x0 - 1e-12 <= t <= x1 + 1e-12:
            x = px(t)
            parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="{_GRID}" '
                f'stroke-width="0.6"/><text x="{x:.1f}" y="{top + ph + 14}" class="axis" '
                f'text-anchor="middle">{escape(x_text(t))}</text>'
            )
    for t in y_ticks:
        if y0 - 1e-12 <= t <= y1 + 1e-12:
            y = py(t)
            parts.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{_GRID}" '
                f'stroke-width="0.6"/><text x="{left - 5}" y="{y + 3.5:.1f}" class="axis" '
                f'text-anchor="end">{escape(fmt(t, y_digits))}</text>'
            )
    if x_label:
        parts.append(
            f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="axis-title" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text transform="translate(12,{top + ph / 2:.1f}) rotate(-90)" class="axis-title" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        if hi > lo:
            parts.append(
                f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" '
                f'stroke="#9ca3af" stroke-dasharray="4 3"/>'
            )
    for k, s in enumerate(series):
        color = s.color or PALETTE[k % len(PALETTE)]
        pts = [
            (px(x), py(y))
            for x, y in zip(s.xs, s.ys, strict=False)
            if math.isfinite(x) and math.isfinite(y)
        ]
        if not pts:
            continue
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        tip = f"<title>{escape(s.name)}</title>" if s.name else ""
        if s.kind in ("line", "linepoints", "step"):
            if s.kind == "step":
                coords = [pts[0]]
                for a, b in itertools.pairwise(pts):
                    coords += [(b[0], a[1]), b]
            else:
                coords = pts
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"'
                f'{dash} stroke-linejoin="round">{tip}</polyline>'
            )
        if s.kind in ("points", "linepoints"):
            fill = "#fff" if s.hollow else color
            r = 3.2 if len(pts) <= 300 else 2.2
            opacity = "" if len(pts) <= 300 else ' fill-opacity="0.55" stroke-opacity="0.55"'
            tips = s.tips or []
            for j, (x, y) in enumerate(pts):
                point_tip = f"<title>{escape(tips[j])}</title>" if j < len(tips) else ""
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="{color}"'
                    f"{opacity}>{point_tip}</circle>"
                )
    for k, (dx_, dy_) in spots.items():
        s = series[k]
        color = s.color or PALETTE[k % len(PALETTE)]
        x, y = 8 + dx_, 10 + dy_
        if s.kind == "points":
            fill = "#fff" if s.hollow else color
            mark = f'<circle cx="{x + 6:.1f}" cy="{y:.0f}" r="3.5" fill="{fill}" stroke="{color}"/>'
        else:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            mark = (
                f'<line x1="{x:.1f}" y1="{y:.0f}" x2="{x + 14:.1f}" y2="{y:.0f}" stroke="{color}" '
                f'stroke-width="2"{dash}/>'
            )
        parts.append(
            f'{mark}<text x="{x + 18:.1f}" y="{y + 4:.0f}" class="legend">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _blend(share: float, dark: tuple[int, int, int]) -> str:
    light = (247, 248, 250)
    t = max(0.0, min(1.0, share))
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(light, dark, strict=True))
    return f"rgb({r},{g},{b})"


def svg_confusion(
    labels: Sequence[str],
    matrix: Sequence[Sequence[int]],
    *,
    stat_name: str = "confusion",
    path: str | None = None,
    title: str = "",
) -> str:
    """A confusion matrix: rows are true classes, columns predicted ones.

    Cells are shaded by their share of the row (blue on the diagonal, red off it) and show the
    count and that share; each carries ``data-value`` (the count) and, when ``path`` is given,
    ``data-path="{path}/{row}/{col}"``.
    """
    n = len(labels)
    if n == 0:
        return ""
    cell = 72 if n <= 3 else 56 if n <= 6 else max(18, 420 // n)
    label_w = min(max(len(s) for s in labels), 18) * 7 + 14
    left = label_w + 18
    top = 36 if n <= 6 else round(label_w * 0.87) + 24
    size_w = left + n * cell + 4
    size_h = top + n * cell + 4
    fit = max(3, int(cell // 6.5))  # characters of a column label that fit over a cell
    parts = [
        f'<svg class="confusion" viewBox="0 0 {size_w} {size_h}" width="{size_w}" '
        f'height="{size_h}" role="img" aria-label="{escape(title or "confusion matrix")}">',
        f'<text x="{left + n * cell / 2:.1f}" y="12" class="axis-title" text-anchor="middle">'
        f"predicted</text>",
        f'<text transform="translate(12,{top + n * cell / 2:.1f}) rotate(-90)" '
        f'class="axis-title" text-anchor="middle">actual</text>',
    ]
    for i, name in enumerate(labels):
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4:.1f}" class="label" '
            f'text-anchor="end">{escape(short)}<title>{escape(name)}</title></text>'
        )
        if n <= 6:
            col = name if len(name) <= fit else name[: fit - 1] + "…"
            parts.append(
                f'<text x="{left + i * cell + cell / 2:.1f}" y="{top - 6}" class="label" '
                f'text-anchor="middle">{escape(col)}<title>{escape(name)}</title></text>'
            )
        else:
            x = left + i * cell + cell * 0.65
            parts.append(
                f'<text transform="translate({x:.1f},{top - 6}) rotate(-60)" class="label">'
                f"{escape(short)}<title>{escape(name)}</title></text>"
            )
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            color = _blend(share, (47, 95, 196) if i == j else (200, 60, 40))
            attrs = (
                f' data-stat="{escape(stat_name)}" data-column="{escape(labels[i])}" '
                f'data-column2="{escape(labels[j])}"'
            )
            if path is not None:
                attrs += f' data-path="{escape(path)}/{i}/{j}"'
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                f'fill="{color}"{attrs} data-value="{count}"><title>actual {escape(labels[i])}'
                f", predicted {escape(labels[j])}: {escape(fmt(count))} "
                f"({escape(fmt_share(share))} of the row)</title></rect>"
            )
            if cell >= 40:
                ink = "#fff" if share > 0.55 else "#1f2933"
                parts.append(
                    f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 1:.1f}" '
                    f'class="cm-count" text-anchor="middle" style="fill:{ink}">'
                    f"{escape(fmt(count))}</text>"
                    f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 14:.1f}" '
                    f'class="cm-share" text-anchor="middle" style="fill:{ink}">'
                    f"{escape(fmt_share(share))}</text>"
                )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- page

CSS = """
:root{--fg:#1f2933;--muted:#6b7280;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--accent:#3b6fd8;
--crit:#b42318;--warn:#b54708;--info:#475467}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
sans-serif;color:var(--fg);background:var(--bg)}
header{background:#111827;color:#f9fafb;padding:20px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header .sub{color:#9ca3af;font-size:13px;margin-top:2px}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);
padding:0 32px;display:flex;gap:4px;overflow-x:auto}
nav a{color:var(--muted);text-decoration:none;padding:10px 12px;font-size:13px;
white-space:nowrap;border-bottom:2px solid transparent}
nav a:hover{color:var(--fg);border-bottom-color:var(--accent)}
main{max-width:1320px;margin:0 auto;padding:24px 32px 48px}
section{margin-bottom:36px}
h2{font-size:18px;margin:0 0 12px;font-weight:600}
h3{font-size:15px;margin:0;font-weight:600;word-break:break-all}
.metrics{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;
margin-bottom:18px}
.metric{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.metric .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.metric .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.metric .s{color:var(--muted);font-size:12px}
.alerts{list-style:none;margin:0;padding:0;background:var(--card);border:1px solid var(--line);
border-radius:10px}
.alerts li{padding:8px 14px;border-top:1px solid var(--line);display:flex;gap:10px;
align-items:baseline}
.alerts li:first-child{border-top:0}
.badge{display:inline-block;font-size:11px;font-weight:600;padding:1px 8px;border-radius:999px;
background:#eef2f7;color:var(--info);white-space:nowrap}
.badge.critical{background:#fee4e2;color:var(--crit)}
.badge.warning{background:#fef0c7;color:var(--warn)}
.badge.info{background:#eef2f7;color:var(--info)}
.badge.kind{background:#fff;border:1px solid var(--line);color:var(--muted);font-weight:500}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:14px}
.chartbox{margin:4px 0 10px}
table.stats td:nth-child(3){padding-left:18px}
table.stats.top{margin-top:10px}
table.stats.top td:first-child{color:var(--fg);max-width:220px;white-space:normal;
overflow-wrap:anywhere}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
min-width:0}
.card-head{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-bottom:10px}
.card-head .score{margin-left:auto;color:var(--muted);font-size:12px}
.card-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.15fr);gap:16px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);font-size:13px;
white-space:nowrap}
th{color:var(--muted);font-weight:500}
td[data-value]{text-align:right}
table.stats td:nth-child(odd){color:var(--muted)}
table.wide{background:var(--card);border:1px solid var(--line);border-radius:10px}
table.wide th{background:#fafbfc;position:sticky;top:0;cursor:pointer;user-select:none}
svg{display:block}
svg.chart{width:100%;height:auto;overflow:visible}
svg text{font:10px system-ui,sans-serif;fill:var(--muted)}
svg text.value{fill:var(--fg)}
.heatwrap{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;
overflow-x:auto}
svg text.legend{font-size:11px;fill:var(--fg)}
td.wrap,th.wrap{white-space:normal;overflow-wrap:anywhere;min-width:200px}
.cards.charts{grid-template-columns:repeat(auto-fill,minmax(400px,1fr));align-items:start}
.card h3 .badge{margin-left:6px;vertical-align:1px}
details.more{margin-top:6px}
details.more summary{cursor:pointer;color:var(--accent);font-size:13px;padding:4px 2px}
.muted{color:var(--muted)}
.bar{height:8px;background:var(--accent);border-radius:4px;min-width:1px}
footer{color:var(--muted);font-size:12px;max-width:1320px;margin:0 auto;padding:0 32px 32px}
@media (max-width:760px){.card-body{grid-template-columns:1fr}.cards{grid-template-columns:1fr}
main,nav,header{padding-left:14px;padding-right:14px}}
"""

# Click a header of a table.sortable to sort by that column (numbers by data-value).
_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, idx) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute("data-order") !== "asc";
    var col = th.cellIndex;
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      var xv = x.getAttribute("data-value"), yv = y.getAttribute("data-value");
      var cmp = (xv !== null && yv !== null && xv !== "" && yv !== "")
        ? parseFloat(xv) - parseFloat(yv)
        : x.textContent.localeCompare(y.textContent);
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute("data-order", asc ? "asc" : "desc");
  });
});
"""


def page(title: str, body: str, *, subtitle: str = "", nav: Sequence[tuple[str, str]] = ()) -> str:
    """A complete, self-contained HTML document."""
    links = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t in nav)
    nav_html = f"<nav>{links}</nav>" if links else ""
    sub = f'<div class="sub">{escape(subtitle)}</div>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>{sub}</header>{nav_html}"
        f"<main>{body}</main><script>{_SCRIPT}</script></body></html>\n"
    )
