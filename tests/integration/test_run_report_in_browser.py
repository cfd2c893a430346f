"""The run report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.reports.run import render_run_html, run_report_json
from tests.integration.browser import chromium, console_errors, run_chromium
from tests.unit.reports.test_run_report import (
    URL_IN_HTML,
    check_report_against_json,
    registration,
    run_stages,
)

pytestmark = pytest.mark.integration


def test_run_report_renders_offline_with_exact_numbers(shared_data: Path, tmp_path: Path) -> None:
    chrome = chromium()
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

    dumped = run_chromium(chrome, tmp_path, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    for section in ("summary", "data", "split", "leaderboard", "tuning", "choice", "evaluation"):
        assert f'id="{section}"' in dom, section
    assert 'id="gate"' in dom
    n = check_report_against_json(dom, doc)
    assert n == check_report_against_json(html, doc)  # the browser kept every number
    assert n > 60
    assert dom.count("<svg") >= 6  # tuning, confusion, ROC, PR, calibration, whiskers...
    assert not console_errors(dumped.stderr), console_errors(dumped.stderr)

    shot = tmp_path / "run.png"
    taken = run_chromium(chrome, tmp_path, f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert not console_errors(taken.stderr), console_errors(taken.stderr)
    keep = os.environ.get("MODELYARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
