"""Cut the prediction log into windows: by event time, by arrival time, or by row count.

``by: auto`` uses the event time when the contract declares a time column (the log then holds
it in ``event_time``), else the arrival time. Time windows are calendar-aligned polars
durations (``1h``, ``1d``, ``1w``, ``1mo``); row windows are consecutive blocks of ``size``
records in arrival order (the last one may be partial).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

from modelyard.errors import ModelyardError

By = Literal["auto", "event_time", "arrival_time", "rows"]


@dataclass
class Window:
    """One window of the log."""

    label: str
    """``2012-03`` / ``2012-03-14`` / ``2012-03-14T10:00`` for time windows, ``rows 0-999``."""
    start: dt.datetime | int
    end: dt.datetime | int
    """Exclusive end (a time, or a row position)."""
    rows: pl.DataFrame


def resolve_by(by: By, *, has_time_column: bool) -> Literal["event_time", "arrival_time", "rows"]:
    if by == "auto":
        return "event_time" if has_time_column else "arrival_time"
    return by


def _label(start: dt.datetime, size: str) -> str:
    if size.endswith("mo") or size.endswith("y"):
        return start.strftime("%Y-%m")
    if size.endswith("d") or size.endswith("w"):
        return start.strftime("%Y-%m-%d")
    return (
        start.strftime("%Y-%m-%dT%H:%M:%S")
        if size.endswith("s")
        else start.strftime("%Y-%m-%dT%H:%M")
    )


def split_windows(
    frame: pl.DataFrame, *, by: Literal["event_time", "arrival_time", "rows"], size: str
) -> list[Window]:
    """The windows of ``frame`` in time (or arrival) order; empty windows are left out.

    >>> import polars as pl
    >>> f = pl.DataFrame({"x": range(5)})
    >>> [(w.label, w.rows.height) for w in split_windows(f, by="rows", size="2")]
    [('rows 0-1', 2), ('rows 2-3', 2), ('rows 4-4', 1)]
    """
    if by == "rows":
        try:
            n = int(size)
        except ValueError:
            raise ModelyardError(
                "the window size is not a number of rows",
                where="monitoring.windows.size",
                expected="a positive integer with by: rows",
                found=repr(size),
                fix="Write for example size: '1000'.",
            ) from None
        if n < 1:
            raise ModelyardError(
                "the window size must be at least 1 row",
                where="monitoring.windows.size",
                found=str(n),
            )
        return [
            Window(
                f"rows {i}-{min(i + n, frame.height) - 1}",
                i,
                min(i + n, frame.height),
                frame.slice(i, n),
            )
            for i in range(0, frame.height, n)
        ]
    if by not in frame.columns:
        raise ModelyardError(f"the log has no column {by!r} to window by", where="prediction log")
    col = pl.col(by)
    if frame.schema[by] == pl.Date:
        col = col.cast(pl.Datetime("us"))
    timed = frame.with_columns(col.alias("_t")).filter(pl.col("_t").is_not_null())
    if timed.height == 0:
        return []
    try:
        timed = timed.with_columns(pl.col("_t").dt.truncate(size).alias("_w"))
        step = pl.select(pl.lit(dt.datetime(2000, 1, 1)).dt.offset_by(size)).item()
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        raise ModelyardError(
            "the window size is not a duration",
            where="monitoring.windows.size",
            expected="a polars duration such as 1h, 1d, 1w, 1mo",
            found=repr(size),
        ) from None
    del step
    out = []
    for (start,), part in timed.sort("_t").group_by(["_w"], maintain_order=True):
        assert isinstance(start, dt.datetime)
        end = pl.select(pl.lit(start).dt.offset_by(size)).item()
        out.append(Window(_label(start, size), start, end, part.drop("_t", "_w")))
    return out
