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


def measured(n: int) -> dict[str, float]:
    """A result with a measurement in it: how long it took differs on every run."""
    CALLS.append("measured")
    started = time.perf_counter_ns()
    return {"value": float(n), "seconds": float(time.perf_counter_ns() - started + len(CALLS))}


def without_seconds(result: dict[str, float]) -> dict[str, float]:
    return {"value": result["value"]}


def value_of(result: dict[str, float]) -> float:
    CALLS.append("value_of")
    return result["value"]


def read_path(path: str) -> str:
    CALLS.append("read_path")
    return Path(path).name
