"""Headless Chromium for tests that look at pages as a person does (flags: ENVIRONMENT.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import skip_or_fail

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
"""A reference to a resource outside the page (a self-contained report has none)."""


def chromium() -> str:
    """The browser's path; skips (fails under CI=true) when it is not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    skip_or_fail("headless Chromium is not installed (apt-get install -y chromium)")
    raise AssertionError  # unreachable


def run_chromium(chrome: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chrome, *FLAGS, f"--user-data-dir={tmp / 'chrome'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    """Console messages in Chromium's log.

    Chromium logs every console message as ``INFO:CONSOLE`` whatever its level (console.error
    included); our reports log nothing, so any CONSOLE line (or an uncaught error) is a failure.
    """
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
