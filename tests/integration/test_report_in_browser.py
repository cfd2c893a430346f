"""The profile report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.profile import profile, type_of
from modelyard.reports.profile import profile_json, render_profile_html
from tests.integration.browser import (
    URL_REF,
    chromium,
    dump_dom,
    screenshot,
)

pytestmark = pytest.mark.integration


def test_report_renders_offline_with_exact_numbers(shared_data: Path, tmp_path: Path) -> None:
    from tests.unit.reports.test_profile_report import check_report_against_json

    chromium()  # skip early (fail under CI=true) when there is no browser
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

    dom = dump_dom(page, tmp_path)
    assert 'id="columns"' in dom
    n = check_report_against_json(dom, doc)
    assert n > 300

    screenshot(page, tmp_path)
