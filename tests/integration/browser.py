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


def dump_dom(page: Path, tmp: Path) -> str:
    """The DOM after Chromium ran the page; asserts it loaded without console messages."""
    dumped = run_chromium(chromium(), tmp, "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert not console_errors(dumped.stderr), console_errors(dumped.stderr)
    return dumped.stdout


def screenshot(page: Path, tmp: Path) -> Path:
    """A PNG of the page as a person sees it (copied to ``$MODELYARD_SCREENSHOT`` if set)."""
    import os

    shot = tmp / f"{page.stem}.png"
    taken = run_chromium(chromium(), tmp, f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert not console_errors(taken.stderr), console_errors(taken.stderr)
    keep = os.environ.get("MODELYARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    return shot
