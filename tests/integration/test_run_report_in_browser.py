"""The run report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.reports.run import render_run_html, run_report_json
from tests.integration.browser import chromium, dump_dom, screenshot
from tests.unit.reports.test_run_report import (
    URL_IN_HTML,
    check_report_against_json,
    registration,
    run_stages,
)

pytestmark = pytest.mark.integration


def test_run_report_renders_offline_with_exact_numbers(shared_data: Path, tmp_path: Path) -> None:
    chromium()  # skip early (fail under CI=true) when there is no browser
    results = run_stages(
        pl.read_csv(shared_data / "titanic.csv"), "survived", slices=["sex"], leakage=["alive"]
    )
    ev = results.evaluation
    report = results.report("titanic", registration(ev, promote=True, champion=ev.score - 0.02))
    html = render_run_html(report)
    doc: dict[str, Any] = json.loads(run_report_json(report))
    page = tmp_path / "run.html"
    page.write_text(html, encoding="utf-8")
    (tmp_path / "profile.html").write_text("<!DOCTYPE html><title>profile</title>", "utf-8")
    assert not URL_IN_HTML.search(html)

    dom = dump_dom(page, tmp_path)
    for section in ("summary", "data", "split", "leaderboard", "tuning", "choice", "evaluation"):
        assert f'id="{section}"' in dom, section
    assert 'id="gate"' in dom
    n = check_report_against_json(dom, doc)
    assert n == check_report_against_json(html, doc)  # the browser kept every number
    assert n > 60
    assert dom.count("<svg") >= 6  # tuning, confusion, ROC, PR, calibration, whiskers...

    screenshot(page, tmp_path)
