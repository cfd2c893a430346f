"""Windows of the log, and reading the log the server writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from modelyard.ops.monitoring.windows import resolve_by, split_windows


def _times(*stamps: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_time": [dt.datetime.fromisoformat(s) for s in stamps],
            "x": list(range(len(stamps))),
        }
    )


def test_month_windows_are_calendar_aligned_and_skip_empty_months() -> None:
    frame = _times("2012-01-31T23:00", "2012-01-01T00:00", "2012-02-01T00:00", "2012-04-15T12:00")
    windows = split_windows(frame, by="event_time", size="1mo")
    assert [w.label for w in windows] == ["2012-01", "2012-02", "2012-04"]
    assert [w.rows.height for w in windows] == [2, 1, 1]
    assert windows[0].start == dt.datetime(2012, 1, 1) and windows[0].end == dt.datetime(2012, 2, 1)
    assert windows[0].rows.get_column("x").to_list() == [1, 0]  # in time order


def test_day_and_hour_windows() -> None:
    frame = _times("2012-01-01T10:05", "2012-01-01T10:55", "2012-01-01T11:00", "2012-01-02T00:00")
    assert [w.rows.height for w in split_windows(frame, by="event_time", size="1d")] == [3, 1]
    hours = split_windows(frame, by="event_time", size="1h")
    assert [w.label for w in hours] == ["2012-01-01T10:00", "2012-01-01T11:00", "2012-01-02T00:00"]


def test_row_windows_and_auto() -> None:
    frame = pl.DataFrame({"x": range(7)})
    assert [w.rows.height for w in split_windows(frame, by="rows", size="3")] == [3, 3, 1]
    assert resolve_by("auto", has_time_column=True) == "event_time"
    assert resolve_by("auto", has_time_column=False) == "arrival_time"
    assert resolve_by("rows", has_time_column=True) == "rows"


def test_bad_sizes_are_user_errors() -> None:
    from modelyard.errors import ModelyardError

    with pytest.raises(ModelyardError, match="not a number of rows"):
        split_windows(pl.DataFrame({"x": [1]}), by="rows", size="1d")
    with pytest.raises(ModelyardError, match="not a duration"):
        split_windows(_times("2012-01-01T00:00"), by="event_time", size="often")


def test_read_the_log_the_server_writes(tmp_path: Path) -> None:
    from modelyard.data.contract import ColumnContract, DataContract
    from modelyard.ops.monitoring.log import read_prediction_log
    from modelyard.ops.serving.predlog import LogOptions, PredictionLog, dumps

    contract = DataContract(
        target="y",
        task="binary",
        columns=[
            ColumnContract(name="t", type="date", role="time"),
            ColumnContract(name="n", type="int"),
            ColumnContract(name="ok", type="bool"),
            ColumnContract(name="y", type="str", role="target"),
        ],
    )
    log = PredictionLog(LogOptions(path=tmp_path / "log", rotate_rows=2))  # several segments
    now = "2024-05-01T10:00:00+00:00"
    recs = [
        ("r1", 0, now, "2024-04-30", "/predict", "served", "m", "1",
         dumps({"t": "2024-04-30", "n": 3, "ok": True}), dumps("yes"), dumps({"no": 0.2, "yes": 0.8}), None, 1.5),
        ("r1", 1, now, "2024-04-29", "/predict", "served", "m", "1",
         dumps({"t": "2024-04-29", "n": 5, "ok": False}), dumps("no"), dumps({"no": 0.7, "yes": 0.3}), None, 1.5),
        ("r2", 0, now, None, "/predict", "rejected", "m", "1",
         dumps({"n": "lots"}), None, None, json.dumps([{"column": "n"}]), 0.4),
    ]  # fmt: skip
    log.put(recs)
    log.put_feedback(
        [("r1", 1, dumps("no"), now), ("r1", 0, dumps("no"), now), ("r1", 0, dumps("yes"), now)]
    )
    log.close()
    read = read_prediction_log(tmp_path / "log", contract=contract)
    assert read.segments >= 2
    rows = read.rows
    assert rows.height == 3
    assert rows.schema["n"] == pl.Int64 and rows.schema["ok"] == pl.Boolean
    assert rows.schema["arrival_time"] == pl.Datetime("us", "UTC")
    assert rows.get_column("event_time").to_list()[:2] == [
        dt.datetime(2024, 4, 30),
        dt.datetime(2024, 4, 29),
    ]
    assert rows.get_column("label").to_list() == ["yes", "no", None]  # the latest label wins
    assert rows.get_column("proba_yes").to_list()[:2] == [0.8, 0.3]
    assert rows.get_column("n").to_list() == [3, 5, None]  # raw "lots" of a rejected record
    assert read.labelled.height == 2
