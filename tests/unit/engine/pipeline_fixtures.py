"""Tiny real steps for engine tests (module-level so their source can be hashed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CALLS: list[str] = []


def numbers(n: int) -> list[int]:
    CALLS.append("numbers")
    return list(range(n))


def scaled(values: list[int], factor: int) -> list[int]:
    CALLS.append("scaled")
    return [v * factor for v in values]


def total(values: list[int]) -> int:
    CALLS.append("total")
    return sum(values)


def slow_total(values: list[int], marker: str) -> dict[str, int]:
    """Writes ``marker`` when it starts, then sleeps: a test kills the process meanwhile."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(30)
    return {"total": sum(values)}


def broken(values: list[int]) -> int:
    raise ValueError("the data has no rows")
