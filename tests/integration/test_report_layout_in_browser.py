"""The three HTML reports laid out by headless Chromium at 1400 px: no text overflows its card.

A script injected into a copy of each page measures the layout after load and writes the result
into the DOM, which ``--dump-dom`` returns. It checks that

- every table cell and label shows its whole text: ``scrollWidth <= clientWidth``;
- every table cell, label, chart and chart text stays inside the box that would clip it or that
  frames it (its card, a scroll box, the chart's own viewport): nothing is cut off or hidden
  behind a scroll bar at 1400 px;
- no escaped entity such as ``&gt;`` is shown as text (a double escape).

A full-page screenshot of each report is kept in the test's ``tmp_path``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.integration.browser import chromium, console_errors, dump_dom, run_chromium

pytestmark = pytest.mark.integration

WIDTH = 1400

# Runs after load; appends <pre id="layout-check">{json}</pre> to the body.
CHECK = r"""
<script>
window.addEventListener("load", function () {
  var TOL = 1;
  function framed(a) {
    return a.matches(".card, .metric, .heatwrap, .alerts, .verdict, main");
  }
  function boxOf(el) {
    // the nearest ancestor that clips el (overflow other than visible) or frames it (a card)
    for (var a = el.parentElement; a; a = a.parentElement) {
      if (framed(a)) return a;
      var s = getComputedStyle(a);
      if (s.overflowX !== "visible" || s.overflowY !== "visible") return a;
    }
    return document.documentElement;
  }
  function name(el) {
    var n = el.tagName.toLowerCase();
    if (el.id) n += "#" + el.id;
    if (el.getAttribute("class")) n += "." + el.getAttribute("class").split(" ").join(".");
    return n;
  }
  function where(el) {
    var s = el.closest("section");
    return (s && s.id ? "#" + s.id + " " : "") + name(el);
  }
  function text(el) { return (el.textContent || "").trim().slice(0, 60); }
  var problems = [];
  var checked = 0;
  var labels = "td, th, .metric .k, .metric .v, .metric .s, h2, h3, .badge, .alerts li span, "
    + "svg text, svg";
  document.querySelectorAll(labels).forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;  // not rendered (a closed <details>)
    checked += 1;
    var html = el instanceof HTMLElement;
    if (html && el.scrollWidth > el.clientWidth + TOL) {
      problems.push({what: "cut", where: where(el), text: text(el),
                     scroll: el.scrollWidth, client: el.clientWidth});
    }
    var box = boxOf(el), b = box.getBoundingClientRect();
    var vertical = el.tagName.toLowerCase() === "svg" || !html;
    var out = r.left < b.left - TOL || r.right > b.right + TOL
      || (vertical && (r.top < b.top - TOL || r.bottom > b.bottom + TOL));
    if (out) {
      problems.push({what: "outside", where: where(el), text: text(el), box: name(box),
                     el: [r.left, r.top, r.right, r.bottom].map(Math.round),
                     by: [b.left, b.top, b.right, b.bottom].map(Math.round)});
    }
  });
  // text a person sees, tooltips included: no entity left after the browser decoded it once
  var shown = [document.body.innerText];
  document.querySelectorAll("svg text, svg title").forEach(function (t) {
    shown.push(t.textContent);
  });
  var entities = [];
  shown.join("\n").replace(/&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);/gi, function (m) {
    entities.push(m);
    return m;
  });
  var sections = {};
  document.querySelectorAll("section[id]").forEach(function (s) {
    var r = s.getBoundingClientRect();
    sections[s.id] = [Math.round(r.top + window.scrollY), Math.round(r.bottom + window.scrollY)];
  });
  var out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({
    checked: checked, problems: problems, entities: entities, sections: sections,
    width: document.documentElement.clientWidth,
    height: document.documentElement.scrollHeight
  });
  document.body.appendChild(out);
});
</script>
"""


def layout(html: str, tmp: Path, name: str) -> dict[str, Any]:
    """Lay ``html`` out at 1400 px in Chromium: the check's result; a full-page screenshot."""
    page = tmp / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    probe = tmp / f"{name}.check.html"
    probe.write_text(html.replace("</body>", CHECK + "</body>", 1), encoding="utf-8")
    dom = dump_dom(probe, tmp)
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, "the layout check did not run"
    import html as html_lib

    result: dict[str, Any] = json.loads(html_lib.unescape(found.group(1)))
    assert result["width"] <= WIDTH and result["checked"] > 20, result
    shot = tmp / f"{name}.png"
    taken = run_chromium(
        chromium(), tmp, f"--window-size={WIDTH},{min(result['height'], 16000)}",
        "--hide-scrollbars", f"--screenshot={shot}", page.as_uri(),
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert not console_errors(taken.stderr), console_errors(taken.stderr)
    assert shot.stat().st_size > 10_000
    return result


def assert_laid_out(result: dict[str, Any]) -> None:
    shown = "\n".join(json.dumps(p, ensure_ascii=False) for p in result["problems"][:25])
    entities = sorted(set(result["entities"]))
    assert not result["problems"] and not entities, (
        f"{len(result['problems'])} problems:\n{shown}\nescaped entities shown as text: {entities}"
    )


# --------------------------------------------------------------------------- the reports


def test_run_report_fits_at_1400_px(shared_data: Path, tmp_path: Path) -> None:
    from modelyard.modeling.search.results import LeaderboardRow, Member, SearchInfo
    from modelyard.reports.run import render_run_html
    from tests.unit.reports.test_run_report import registration, run_stages

    chromium()  # skip early (fail under CI=true) when there is no browser
    res = run_stages(
        pl.read_csv(shared_data / "titanic.csv"),
        "survived",
        slices=["sex", "embark_town"],
        leakage=["alive"],
    )
    ev = res.evaluation
    report = res.report("titanic", registration(ev, promote=True, champion=ev.score - 0.02))
    assert report.leaderboard is not None and report.choice is not None
    # an ensemble of three, as a larger search ends, and a search on a sample of the rows
    report.choice.name = "ensemble"
    report.choice.members = [
        Member(name="hist_gradient_boosting trial 12", family="hist_gradient_boosting",
               params={"learning_rate": 0.05, "max_leaf_nodes": 31, "l2_regularization": 0.1,
                       "max_features": 0.8}, weight=0.55, key="a"),
        Member(name="lightgbm 3", family="lightgbm",
               params={"learning_rate": 0.03, "num_leaves": 15, "colsample_bytree": 0.3},
               weight=0.3, key="b"),
        Member(name="linear", family="linear", params={"C": 1.0}, weight=0.15, key="c"),
    ]  # fmt: skip
    report.leaderboard.rows.append(
        LeaderboardRow(
            name="xgboost", family="xgboost", mean=None, std=None, state="failed",
            error="XGBoostError: [12:03:41] src/data/data.cc:1104: Check failed: valid: Label "
            "contains NaN, infinity or a value too large.",
        )
    )  # fmt: skip
    report.leaderboard.search = SearchInfo(
        mode="budget", budget_seconds=70, seconds=31.5, executor="local, 2 workers",
        rows=500, total_rows=712, sample="stratified", fits=52,
    )  # fmt: skip
    result = layout(render_run_html(report), tmp_path, "run")
    assert_laid_out(result)


def test_profile_report_fits_at_1400_px(shared_data: Path, tmp_path: Path) -> None:
    from modelyard.config.schema import ColumnRoles, ContractSection, ProfileSection
    from modelyard.data.contract import infer_contract
    from modelyard.data.profile import profile
    from modelyard.reports.profile import render_profile_html

    chromium()
    # KDD Cup 99: 41 columns, 30 of them numeric with long names (a wide heatmap)
    folder = shared_data / "kddcup99"
    names = [
        line.split(":")[0]
        for line in (folder / "kddcup.names").read_text().splitlines()[1:]
        if ":" in line
    ] + ["label"]
    df = pl.read_csv(
        folder / "kddcup.data_10_percent.gz", has_header=False, new_columns=names, n_rows=5000
    )
    contract = infer_contract(
        df, target="label", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    prof = profile(df, contract, ProfileSection())
    assert prof.correlations is not None and len(prof.correlations.columns) >= 25
    result = layout(render_profile_html(prof), tmp_path, "profile")
    assert_laid_out(result)
    # a screenshot 4000 px tall shows the dataset-level sections whole
    for section in ("correlations", "target"):
        top, bottom = result["sections"][section]
        assert bottom <= 4000, (section, top, bottom)


def test_drift_report_fits_at_1400_px(shared_data: Path, tmp_path: Path) -> None:
    from modelyard.ops.monitoring.drift import drift
    from modelyard.reports.drift import render_drift_html

    chromium()
    hour = pl.read_csv(shared_data / "bike_sharing" / "hour.csv").drop("instant", "dteday")
    rng = np.random.default_rng(0)
    weather = ["clear, few clouds", "mist and cloudy", "light snow or light rain", "heavy rain"]
    hour = hour.with_columns(
        pl.Series("weather_situation_described", rng.choice(weather, hour.height))
    )
    ref, cur = hour.filter(pl.col("yr") == 0), hour.filter(pl.col("yr") == 1)
    report = drift(ref.drop("yr"), cur.drop("yr"), target="cnt")
    assert report.drifted_features  # the "why" column has text
    result = layout(render_drift_html(report), tmp_path, "drift")
    assert_laid_out(result)


def test_monitoring_report_fits_at_1400_px(tmp_path: Path) -> None:
    from modelyard.reports.drift import render_monitor_html
    from tests.unit.ops.monitoring._synthetic import report

    chromium()
    result = layout(render_monitor_html(report()), tmp_path, "monitor")
    assert_laid_out(result)
