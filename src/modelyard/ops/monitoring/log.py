"""Read the prediction log (a folder of SQLite segments, see
:mod:`modelyard.ops.serving.predlog`) into polars frames.

:func:`read_prediction_log` gives one row per logged record with the record's features as
typed columns (cast to the data contract), ``prediction``, one ``proba_<class>`` column per
class, and ``label`` (the ground truth from ``/feedback``, null until it arrives).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.data.contract import DataContract

_PRED_COLUMNS = [
    "request_id", "row", "arrival_time", "event_time", "route", "status", "model_name",
    "model_version", "features", "prediction", "probabilities", "violations", "latency_ms",
]  # fmt: skip
_FEEDBACK_COLUMNS = ["request_id", "row", "label", "received_time"]
LOG_COLUMNS = frozenset(
    {"request_id", "row", "arrival_time", "event_time", "route", "status", "model_name",
     "model_version", "prediction", "violations", "latency_ms", "label"}
)  # fmt: skip
"""Columns of the log itself (not features); ``proba_*`` columns are outputs too."""


@dataclass
class PredictionLogFrame:
    """The log as one frame (``rows``) plus its segment count."""

    rows: pl.DataFrame
    segments: int

    @property
    def labelled(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("label").is_not_null())


def _read_segments(folder: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    files = sorted(folder.glob("*.sqlite"))
    preds: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    for path in files:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            preds.extend(conn.execute(f"SELECT {', '.join(_PRED_COLUMNS)} FROM predictions"))
            feedback.extend(conn.execute(f"SELECT {', '.join(_FEEDBACK_COLUMNS)} FROM feedback"))
        except sqlite3.DatabaseError as exc:
            raise ModelyardError(
                "a prediction-log segment cannot be read",
                where=str(path),
                expected="a SQLite segment written by modelyard serve",
                found=str(exc),
                fix="Move the file out of the log folder.",
            ) from None
        finally:
            conn.close()
    return preds, feedback, len(files)


def _json_column(frame: pl.DataFrame, name: str) -> pl.Series:
    """Decode a column of JSON scalars (labels, predictions) into one polars dtype."""
    values = [None if v is None else json.loads(v) for v in frame.get_column(name).to_list()]
    try:
        return pl.Series(name, values, strict=False)
    except (TypeError, ValueError, OverflowError):
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)


def read_prediction_log(
    folder: Path | str, *, contract: DataContract | None = None
) -> PredictionLogFrame:
    """Every record of the log folder, joined with its feedback label (latest wins).

    Times are UTC datetimes; features become typed columns (the contract's types when given;
    raw values of rejected records that cannot be read are null).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelyardError(
            "the prediction log folder does not exist",
            where=str(folder),
            expected="the folder of serving.prediction_log.path",
            found="nothing",
            fix="Serve the model with the prediction log enabled (modelyard serve), then retry.",
        )
    preds, feedback, segments = _read_segments(folder)
    schema = {c: pl.String for c in _PRED_COLUMNS} | {"row": pl.Int64, "latency_ms": pl.Float64}
    frame = pl.DataFrame(preds, schema=schema, orient="row")
    fb = pl.DataFrame(
        feedback,
        schema={
            "request_id": pl.String,
            "row": pl.Int64,
            "label": pl.String,
            "received_time": pl.String,
        },
        orient="row",
    )
    fb = fb.sort("received_time", maintain_order=True).unique(
        ["request_id", "row"], keep="last", maintain_order=True
    )
    frame = frame.join(
        fb.select("request_id", "row", "label"), on=["request_id", "row"], how="left"
    )
    times = [
        pl.col(c).str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
        for c in ("arrival_time",)
    ]
    frame = frame.with_columns(times)
    features = _features(frame.get_column("features"), contract)
    outputs = [_json_column(frame, "prediction"), _json_column(frame, "label")]
    probas = _probabilities(frame.get_column("probabilities"))
    base = frame.drop("features", "prediction", "label", "probabilities")
    rows = pl.concat([base, pl.DataFrame(outputs), probas, features], how="horizontal")
    rows = rows.with_columns(
        pl.col("event_time").str.to_datetime(time_unit="us", strict=False).alias("event_time")
        if rows.schema["event_time"] == pl.String
        else pl.col("event_time")
    )
    return PredictionLogFrame(rows.sort("arrival_time", "request_id", "row"), segments)


def _features(column: pl.Series, contract: DataContract | None) -> pl.DataFrame:
    if column.len() == 0:
        names = [c.name for c in contract.features] if contract else []
        return pl.DataFrame({n: pl.Series(n, [], dtype=pl.String) for n in names})
    records = [json.loads(v) for v in column.to_list()]
    names = (
        [c.name for c in contract.features] if contract else sorted({k for r in records for k in r})
    )
    names = [n for n in names if n not in LOG_COLUMNS and not n.startswith("_")]
    data = {n: [r.get(n) if isinstance(r, dict) else None for r in records] for n in names}
    frame = pl.DataFrame(
        {n: pl.Series(n, [_text(v) for v in vals], dtype=pl.String)
         for n, vals in data.items()}
    )  # fmt: skip
    if contract is not None:
        from modelyard.data.validation import cast_to_contract

        frame = cast_to_contract(frame, contract)[0]
    else:
        frame = frame.with_columns(
            pl.col(n).cast(pl.Float64) for n in names
            if frame.get_column(n).cast(pl.Float64, strict=False).null_count()
            == frame.get_column(n).null_count()
        )  # fmt: skip
    return frame


def _text(value: Any) -> str | None:
    """A JSON scalar as the text a CSV would hold (``true``, ``1.5``), for contract casting."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _probabilities(column: pl.Series) -> pl.DataFrame:
    values = [None if v is None else json.loads(v) for v in column.to_list()]
    classes = sorted({str(k) for v in values if isinstance(v, dict) for k in v})
    return pl.DataFrame(
        {
            f"proba_{c}": pl.Series(
                [None if not isinstance(v, dict) else v.get(c) for v in values], dtype=pl.Float64
            )
            for c in classes
        }
    )
