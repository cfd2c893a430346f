"""The drift report's console text and HTML show the same numbers, and the target apart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from modelyard.ops.monitoring.drift import drift
from modelyard.reports.drift import drift_text, render_drift_html
from tests.unit.reports.stats import collect, double_escaped


class _Cells(HTMLParser):
    """(data-column, data-stat) -> the text shown in that cell."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[tuple[str, str], str] = {}
        self._at: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and a.get("data-stat") and a.get("data-column"):
            self._at = (str(a["data-column"]), str(a["data-stat"]))

    def handle_data(self, data: str) -> None:
        if self._at is not None:
            self.shown[self._at] = data
            self._at = None


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=n)
    ref = pl.DataFrame(
        {
            # 30% missing in the reference, 10% now: the change is -0.2 (printed as 0.196)
            "x": np.where(rng.random(n) < 0.3, np.nan, x),
            "c": rng.choice(["a", "b", "c"], n),
            "y": rng.normal(10, 2, n),
        }
    )
    cur = pl.DataFrame(
        {
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n) + 0.5),
            "c": rng.choice(["a", "b", "c"], n, p=[0.6, 0.2, 0.2]),
            "y": rng.normal(11, 2, n),
        }
    )
    return ref, cur


def test_console_numbers_are_the_html_numbers_with_their_sign() -> None:
    report = drift(*_frames(), target="y")
    text = drift_text(report, reference="a.csv", current="b.csv")
    cells = _Cells()
    cells.feed(render_drift_html(report))
    x = report.feature("x")
    assert x.missing_delta < -0.15
    for f in [*report.features, report.target]:
        assert f is not None
        line = next(line for line in text.splitlines() if line[3:].split()[:1] == [f.column])
        for stat in ("psi", "wasserstein", "jensen_shannon", "missing_delta", "p_value"):
            if getattr(f, stat) is None:
                assert f" {stat} " not in line
                continue
            shown = cells.shown[(f.column, stat)]
            assert f"{stat} {shown}" in line, (stat, shown, line)
    assert f"missing_delta {cells.shown[('x', 'missing_delta')]}" in text
    assert cells.shown[("x", "missing_delta")].startswith("-0.")


def test_the_target_is_shown_as_label_drift_apart() -> None:
    report = drift(*_frames(), target="y")
    assert report.target is not None and report.target.drifted
    text = drift_text(report, reference="a.csv", current="b.csv")
    head, _, tail = text.partition("label drift (target 'y'")
    assert text.splitlines()[0].startswith("DRIFT: 2 of 2 features drifted (a.csv → b.csv)")
    assert " y " not in head and tail.splitlines()[1].split()[:3] == ["!", "y", "drift"]
    html = render_drift_html(report)
    assert "<section id='label-drift'>" in html and "2 features compared" in html
    features = html.split("<section id='features'>")[1].split("</section>")[0]
    assert 'data-column="y"' not in features
    label = html.split("<section id='label-drift'>")[1].split("</section>")[0]
    assert 'data-stat="wasserstein" data-column="y"' in label


def test_distributions_are_grouped_bars_over_the_real_bins() -> None:
    """Issue 12: the charts were line plots over bin numbers, their axis label escaped twice
    (``bin (≤ -1.2 … &gt; 1.3)``); now one pair of bars per bin, labelled by its edges."""
    report = drift(*_frames(), target="y")
    html = render_drift_html(report)
    assert double_escaped(html) == []
    bars = collect(html)
    for f in [*report.features, report.target]:
        assert f is not None and f.bins
        for stat, shares in (("reference_share", f.reference_shares),
                             ("current_share", f.current_shares)):  # fmt: skip
            mine = [b for b in bars if b["data-stat"] == stat and b.get("data-column") == f.column]
            assert [b["data-bin"] for b in mine] == f.bins
            assert [float(b["data-value"] or "nan") for b in mine] == shares
    x = report.feature("x")
    assert x.bins[0].startswith("≤ ") and x.bins[-1].startswith("> ")
    assert f">{x.bins[-1].replace('>', '&gt;')}<title>" in html  # the bin's label, escaped once
    assert "<div class='cards charts'>" in html  # compact cards, several to a row


def test_the_why_column_wraps() -> None:
    report = drift(*_frames(), target="y")
    html = render_drift_html(report)
    reasons = "; ".join(report.feature("x").reasons)
    assert reasons and f"<td class='wrap'>{reasons.replace('>', '&gt;')}</td>" in html


@given(
    labels=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=25),
    data=st.data(),
)
def test_grouped_bars_any_labels_and_shares(labels: list[str], data: st.DataObject) -> None:
    from modelyard.reports.html import svg_grouped_bars

    n = len(labels)
    share = st.floats(min_value=0.0, max_value=1.0)
    ref = data.draw(st.lists(share, min_size=n, max_size=n))
    cur = data.draw(st.lists(share, min_size=n, max_size=n))
    svg = svg_grouped_bars(
        labels, [("reference", ref), ("current", cur)],
        stat_names=["reference_share", "current_share"], column="c", width=400,
    )  # fmt: skip
    clean = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", svg)
    root = ET.fromstring(clean)  # well-formed: every label escaped
    assert double_escaped(svg) == [] or any("&" in label for label in labels)
    bars = [b for b in collect(svg) if b["data-stat"] == "reference_share"]
    assert [float(b["data-value"] or "nan") for b in bars] == ref
    view_w = float(root.attrib["viewBox"].split()[2])
    for rect in root.iter("rect"):
        assert float(rect.attrib["x"]) + float(rect.attrib["width"]) <= view_w + 1e-6


def test_monitoring_trends_are_cards_over_named_windows() -> None:
    from modelyard.reports.drift import render_monitor_html
    from tests.unit.ops.monitoring._synthetic import report

    r = report()
    html = render_monitor_html(r)
    trends = html.split("<section id='trends'>")[1].split("</section>")[0]
    assert trends.count("<div class='card'><h3>") == trends.count("<svg")
    for w in r.windows:  # the x axis names the windows, not their numbers
        assert f'class="axis" text-anchor="middle">{w.label}</text>' in trends
    assert "window (" not in trends
    assert double_escaped(html) == []
