"""The profile report as a person sees it: rendered by headless Chromium, offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.profile import profile, type_of
from modelyard.reports.profile import profile_json, render_profile_html

pytestmark = pytest.mark.integration

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--virtual-time-budget=10000",
    "--enable-logging=stderr",
    "--v=0",
]
URL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*https?://|url\(\s*["']?\s*https?://""", re.I)


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: every real component must be exercised)")
    pytest.skip(reason)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    _skip_or_fail("headless Chromium is not installed (apt-get install -y chromium)")
    raise AssertionError  # unreachable


def _run(chrome: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chrome, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_errors(stderr: str) -> list[str]:
    """Console messages in Chromium's log.

    Chromium logs every console message as ``INFO:CONSOLE`` whatever its level (console.error
    included), so the report, which logs nothing, must produce no CONSOLE line at all.
    """
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_report_renders_offline_with_exact_numbers(shared_data: Path, tmp_path: Path) -> None:
    from tests.unit.reports.test_profile_report import check_report_against_json

    chrome = _chromium()
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

    dumped = _run(chrome, tmp_path, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert 'id="columns"' in dom
    n = check_report_against_json(dom, doc)
    assert n > 300
    assert not _console_errors(dumped.stderr), _console_errors(dumped.stderr)

    shot = tmp_path / "profile.png"
    taken = _run(chrome, tmp_path, f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert not _console_errors(taken.stderr), _console_errors(taken.stderr)
    keep = os.environ.get("MODELYARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
