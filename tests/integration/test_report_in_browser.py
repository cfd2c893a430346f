"""The profile report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.profile import profile, type_of
from modelyard.reports.profile import profile_json, render_profile_html
from tests.integration.browser import URL_REF, chromium, console_errors, run_chromium

pytestmark = pytest.mark.integration


def test_report_renders_offline_with_exact_numbers(shared_data: Path, tmp_path: Path) -> None:
    from tests.unit.reports.test_profile_report import check_report_against_json

    chrome = chromium()
    df = pl.read_csv(shared_data / "titanic.csv")
    contract = DataContract(
        target="survived",
        task="binary",
        columns=[
            ColumnContract(name=n, type=type_of(t), role="target" if n == "survived" else "feature")
            for n, t in df.schema.items()
        ],
    )
    prof = profile(df, contract, ProfileSection())
    html = render_profile_html(prof)
    doc: dict[str, Any] = json.loads(profile_json(prof))
    page = tmp_path / "profile.html"
    page.write_text(html, encoding="utf-8")

    # The source references nothing outside the page.
    assert not URL_REF.search(html)

    dumped = run_chromium(chrome, tmp_path, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert 'id="columns"' in dom
    n = check_report_against_json(dom, doc)
    assert n > 300
    assert not console_errors(dumped.stderr), console_errors(dumped.stderr)

    shot = tmp_path / "profile.png"
    taken = run_chromium(chrome, tmp_path, f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert not console_errors(taken.stderr), console_errors(taken.stderr)
    keep = os.environ.get("MODELYARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
