"""The drift report's console text and HTML show the same numbers, and the target apart."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import polars as pl

from modelyard.ops.monitoring.drift import drift
from modelyard.reports.drift import drift_text, render_drift_html


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
