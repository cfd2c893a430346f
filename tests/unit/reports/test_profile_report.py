"""The profile report: every shown number equals the JSON, nothing is fetched from outside."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.profile import Profile, profile, type_of
from modelyard.reports.html import escape, fmt, fmt_share, svg_line
from modelyard.reports.profile import profile_json, render_profile_html
from tests.unit.reports.stats import collect, double_escaped

URL_IN_HTML = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*https?:|url\(\s*["']?\s*https?:|@import""", re.I
)


def expected(doc: dict[str, Any], item: dict[str, str | None], seen: dict[Any, int]) -> Any:
    """The JSON value an element of the report claims to show."""
    stat, column = item["data-stat"] or "", item.get("data-column")
    if stat == "corr":
        cols = doc["correlations"]["columns"]
        return doc["correlations"]["matrix"][cols.index(column)][cols.index(item["data-column2"])]
    if stat in ("class_count", "class_share"):
        (cls,) = [c for c in doc["class_balance"]["classes"] if c["value"] == column]
        return cls["count" if stat == "class_count" else "share"]
    if column is None:
        if stat == "classes":
            return len(doc["class_balance"]["classes"])
        if stat in ("minority_share", "imbalance_ratio"):
            return doc["class_balance"][stat]
        return doc["dataset"][stat]
    (col,) = [c for c in doc["columns"] if c["name"] == column]
    if stat == "association":
        (a,) = [a for a in doc["target_associations"] if a["column"] == column]
        return a["score"]
    if stat in ("top_count", "top_share"):
        k = seen.setdefault((stat, column), 0)
        seen[(stat, column)] = k + 1
        return col["categorical"]["top"][k]["count" if stat == "top_count" else "share"]
    if stat == "quality_score":
        return col["quality"]["score"]
    if stat in ("completeness", "validity", "uniqueness"):
        return col["quality"][stat]
    if stat in col:
        return col[stat]
    if stat.startswith("p") and stat[1:].isdigit():
        return col["numeric"]["quantiles"][stat]
    return col["numeric"][stat]


def check_report_against_json(html: str, doc: dict[str, Any]) -> int:
    """Assert every data-value in ``html`` equals the JSON value; return how many."""
    seen: dict[Any, int] = {}
    items = collect(html)
    for item in items:
        want = expected(doc, item, seen)
        raw = item["data-value"]
        if want is None:
            assert raw == "", item
        else:
            got = float(raw or "nan")
            assert got == float(want) or (math.isnan(got) and math.isnan(float(want))), (
                item,
                want,
            )
    return len(items)


def make_contract(df: pl.DataFrame, target: str, task: Any) -> DataContract:
    return DataContract(
        target=target,
        task=task,
        columns=[
            ColumnContract(name=n, type=type_of(t), role="target" if n == target else "feature")
            for n, t in df.schema.items()
        ],
    )


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> Profile:
    df = pl.read_csv(shared_data / "titanic.csv")
    return profile(df, make_contract(df, "survived", "binary"), ProfileSection())


@pytest.fixture(scope="module")
def hour(shared_data: Path) -> Profile:
    df = pl.read_csv(shared_data / "bike_sharing" / "hour.csv", try_parse_dates=True)
    return profile(df, make_contract(df, "cnt", "regression"), ProfileSection())


@pytest.mark.parametrize("name", ["titanic", "hour"])
def test_every_number_equals_the_json(name: str, request: pytest.FixtureRequest) -> None:
    prof: Profile = request.getfixturevalue(name)
    html = render_profile_html(prof)
    doc = json.loads(profile_json(prof))
    n = check_report_against_json(html, doc)
    assert n > 20 * len(prof.columns)
    stats = {(i["data-stat"], i.get("data-column")) for i in collect(html)}
    for col in prof.columns:
        assert ("count", col.name) in stats
        if col.numeric is not None:
            assert {("mean", col.name), ("std", col.name), ("p50", col.name)} <= stats
    assert ("rows", None) in stats
    assert ("quality_score", None) in stats


def test_sections_and_leakage_first(titanic: Profile) -> None:
    html = render_profile_html(titanic)
    for section in ("overview", "alerts", "columns", "correlations", "target", "balance"):
        assert f'id="{section}"' in html
    first_alert = re.search(r'<li data-alert="([a-z_]+)"', html)
    assert first_alert is not None
    assert first_alert.group(1) == "leakage"
    assert html.index('id="overview"') < html.index('id="columns"')


def test_self_contained(titanic: Profile, hour: Profile) -> None:
    for prof in (titanic, hour):
        html = render_profile_html(prof)
        assert not URL_IN_HTML.search(html)
        assert "http://" not in html and "https://" not in html
        assert "<link" not in html


def test_hostile_names_are_escaped() -> None:
    df = pl.DataFrame(
        {
            "<script>alert(1)</script>": [1.0, 2.0, 3.0],
            'quote"s & ünïcödé 名前': ["<i>", "x", "<i>"],
        }
    )
    contract = DataContract(
        columns=[ColumnContract(name=n, type=type_of(t)) for n, t in df.schema.items()]
    )
    html = render_profile_html(profile(df, contract, ProfileSection()))
    assert "<script>alert" not in html
    assert "<i>" not in html
    assert html.count("<script>") == 1  # only the page's own sorting script
    doc = json.loads(profile_json(profile(df, contract, ProfileSection())))
    check_report_against_json(html, doc)


def test_formatting() -> None:
    assert fmt(None) == "—"
    assert fmt(53940) == "53,940"
    assert fmt(3932.799721913237) == "3933"
    assert fmt(0.38383838) == "0.3838"
    assert fmt(123456.7) == "123,457"
    assert fmt(0.0) == "0"
    assert fmt(1.5e-7) == "1.500e-07"
    assert fmt(float("nan")) == "NaN"
    assert fmt_share(0.12008) == "12.01%"
    assert fmt_share(0.0) == "0%"
    assert escape('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    svg = svg_line([0, 1, 2], [("a", [0.0, 1.0, 0.5])])
    assert svg.startswith("<svg") and "polyline" in svg


def test_the_heatmap_has_a_colour_legend_and_room_for_its_labels(hour: Profile) -> None:
    """Issue 12: no colour legend; the last rotated column labels ran off the chart."""
    import xml.etree.ElementTree as ET

    html = render_profile_html(hour)
    svg = html[html.index('<svg class="heatmap"') :]
    svg = svg[: svg.index("</svg>") + 6]
    root = ET.fromstring(svg)  # inline SVG in HTML: no namespace
    legend = [g for g in root.iter("g") if g.get("aria-label") == "colour scale: Pearson r"]
    assert legend, "no colour legend"
    ticks = {t.text for t in legend[0].iter("text")}
    assert {"−1", "0", "+1", "Pearson r"} <= ticks
    steps = [r for r in legend[0].iter("rect") if r.find("title") is not None]
    assert steps[0].get("fill") == "rgb(55,125,255)" and steps[-1].get("fill") == "rgb(255,85,65)"
    # a label rotated by -60 degrees reaches half its length to the right (10 px font: < 6.2 px
    # a character), and all of it above the matrix
    width = float(root.attrib["viewBox"].split()[2])
    rotated = [t for t in root.iter("text") if "rotate(-60)" in (t.get("transform") or "")]
    assert len(rotated) == len(hour.correlations.columns)  # type: ignore[union-attr]
    for t in rotated:
        x, y = map(float, re.findall(r"translate\(([\d.]+),([\d.]+)\)", t.get("transform", ""))[0])
        length = len(t.text or "") * 6.2
        assert x + length * 0.5 <= width, (t.text, x, width)
        assert y - length * 0.87 >= 0, (t.text, y)


def test_dataset_sections_come_before_the_column_cards(titanic: Profile) -> None:
    """Issue 12: at the end of a long page, a 4000 px screenshot cut off the correlations and
    the target relationship; they now follow the overview, before the per-column cards."""
    html = render_profile_html(titanic)
    at = {s: html.index(f'<section id="{s}">') for s in ("target", "correlations", "columns")}
    assert at["target"] < at["correlations"] < at["columns"]
    nav = re.findall(r'<a href="#([a-z]+)">', html)
    assert nav == ["overview", "alerts", "target", "balance", "correlations", "columns"]
    assert double_escaped(html) == []


def test_alerts_beyond_the_first_ten_are_folded(shared_data: Path) -> None:
    from modelyard.reports.profile import SHOWN_ALERTS

    df = pl.DataFrame({f"const_{k}": [1] * 50 for k in range(14)} | {"x": list(range(50))})
    prof = profile(df, make_contract(df, "x", "regression"), ProfileSection())
    assert len(prof.alerts) > SHOWN_ALERTS
    html = render_profile_html(prof)
    shown, _, folded = html.partition('<details class="more">')
    assert shown.count("<li data-alert=") == SHOWN_ALERTS
    assert folded.count("<li data-alert=") == len(prof.alerts) - SHOWN_ALERTS
    assert f"{len(prof.alerts) - SHOWN_ALERTS} more alerts" in folded


def test_estimated_numbers_are_marked_with_their_bounds(tmp_path: Path) -> None:
    """A table beyond the sketches' exact sizes: every shown number still equals the JSON,
    the estimated ones read "≈" with the sketch and its bound, the exact ones stay unmarked."""
    import numpy as np

    from modelyard.data.table import as_table
    from tests.unit.reports.stats import collect as stats_of

    n = 150_000
    rng = np.random.default_rng(0)
    df = pl.DataFrame(
        {
            "v": rng.normal(size=n),
            "code": [f"c{i}" for i in rng.integers(0, 60_000, n)],
            "y": rng.choice(["a", "b"], n).tolist(),
        }
    )
    table = as_table(df, tmp_path / "t", batch_rows=50_000)
    prof = profile(table, make_contract(df, "y", "binary"), ProfileSection())
    assert set(prof.column("v").estimated) == {"distinct", "quantiles", "outliers"}
    code = prof.column("code")
    assert set(code.estimated) == {"top"}  # > 20k levels: Misra-Gries; < 100k: exact distinct
    assert code.distinct == df["code"].n_unique()
    html = render_profile_html(prof)
    check_report_against_json(html, json.loads(profile_json(prof)))
    shown = {
        (i["data-stat"], i.get("data-column")): i
        for i in stats_of(html)
        if i["data-stat"] in ("distinct", "p50", "mean", "count")
    }
    assert shown[("distinct", "v")]["data-value"] == str(prof.column("v").distinct)
    assert 'data-estimated="quantiles"' in html and 'data-estimated="top"' in html
    assert "HyperLogLog, 16384 registers, ±0.81% (standard error)" in html
    cell = re.compile(r'data-stat="(\w+)" data-column="v" data-value="[^"]*">([^<]*)<')
    text = {stat: shown_text for stat, shown_text in cell.findall(html)}
    assert text["distinct"].startswith("≈ ") and text["p50"].startswith("≈ ")
    assert text["outliers"].startswith("≈ ")
    assert not text["mean"].startswith("≈") and not text["count"].startswith("≈")
    assert "≈" not in text["min"] and "≈" not in text["max"]
    exact = prof.column("y")
    assert exact.estimated == {} and exact.distinct == 2
