"""The prediction log: every request the server sees, served or rejected, one row per record.

This is the input of monitoring (drift, performance once labels arrive). Storage: a folder of
**SQLite segment files** in WAL mode, ``<folder>/predlog-<UTC start>-<pid>-<n>.sqlite``. Each
server process writes its own segments (no cross-process locking) and starts a new one when the
current one reaches ``rotate_bytes`` or ``rotate_rows``; a reader takes every ``*.sqlite`` file
of the folder (open them read-only; a segment being written is readable thanks to WAL).

Writing never blocks a request for long: a request puts its records on a bounded queue
(waiting at most ``max_wait_ms`` when the queue is full, then dropping them and counting
``modelyard_prediction_log_dropped_total``); a background thread commits them in batches
(every 100 ms or 500 records). Each commit is durable against a crash of the server process
(WAL, ``synchronous=NORMAL``); :meth:`PredictionLog.close` drains the queue before returning.

A failed write never poisons the next one: the batch's transaction is rolled back, its records
are retried one by one (one record SQLite cannot store costs that record only, counted as
dropped), and a connection that cannot roll back is replaced by a new segment. Every record
lost on the way (queue full, write failed, log closed) is reported through ``on_drop`` (the
server counts it in ``modelyard_prediction_log_dropped_total``), and :meth:`PredictionLog.health`
says whether the last write succeeded (``/ready`` shows it).

Schema (format version 1)::

    CREATE TABLE predictions (
        request_id     TEXT NOT NULL,    -- one per HTTP request (X-Request-ID if sent)
        row            INTEGER NOT NULL, -- position of the record in the request
        arrival_time   TEXT NOT NULL,    -- ISO 8601 UTC, when the request arrived
        event_time     TEXT,             -- the contract's time column of the record, if any
        route          TEXT NOT NULL,    -- /predict or /invocations
        status         TEXT NOT NULL,    -- served | flagged (lenient: served with violations)
                                         --   | rejected
        model_name     TEXT,
        model_version  TEXT,
        features       TEXT NOT NULL,    -- JSON object: the record as sent (raw) for rejected
                                         --   rows, the checked values for served ones
        prediction     TEXT,             -- JSON value: the label (or number), NULL if rejected
        probabilities  TEXT,             -- JSON object {class: probability}, classifiers only
        violations     TEXT,             -- JSON list of {column, check, message}, or NULL
        latency_ms     REAL              -- server time of the whole request
    );
    CREATE TABLE feedback (
        request_id     TEXT NOT NULL,
        row            INTEGER NOT NULL, -- the record's position in its request
        label          TEXT NOT NULL,    -- JSON value: the ground truth
        received_time  TEXT NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);  -- format_version, created, pid

Dates and datetimes in ``features`` are ISO strings. Join ``feedback`` to ``predictions`` on
``(request_id, row)`` across all segments (a label may arrive in a later segment).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_BATCH = 500
_FLUSH_SECONDS = 0.1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT NOT NULL, row INTEGER NOT NULL, arrival_time TEXT NOT NULL,
    event_time TEXT, route TEXT NOT NULL, status TEXT NOT NULL, model_name TEXT,
    model_version TEXT, features TEXT NOT NULL, prediction TEXT, probabilities TEXT,
    violations TEXT, latency_ms REAL
);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL, row INTEGER NOT NULL, label TEXT NOT NULL,
    received_time TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
_INSERT = "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
_FEEDBACK = "INSERT INTO feedback VALUES (?,?,?,?)"

Record = tuple[Any, ...]


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def dumps(value: Any) -> str:
    """JSON text for the log (non-finite floats become null, dates ISO strings).

    The text is always storable as UTF-8: a string holding a lone surrogate (JSON allows the
    escape ``"\\ud800"``, UTF-8 cannot encode it) is written with ASCII escapes instead, and a
    value nested too deeply to serialise is replaced by a note.
    """
    try:
        text = json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)
    except ValueError:
        text = json.dumps(_finite(value), default=_json_default, ensure_ascii=False)
    except RecursionError:
        return json.dumps({"_unserialisable": "nested too deeply to log"})
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(json.loads(text), ensure_ascii=True)
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class LogOptions:
    """Where and how the log is written (from ``serving.prediction_log``)."""

    path: Path
    rotate_bytes: int = 256 * 1024 * 1024
    rotate_rows: int = 1_000_000
    queue_size: int = 10_000
    max_wait_ms: float = 50.0


@dataclass(frozen=True)
class LogHealth:
    """What :meth:`PredictionLog.health` reports (``/ready`` shows it)."""

    ok: bool
    """The last write succeeded (or nothing was written yet)."""
    written: int
    """Prediction records committed."""
    dropped: int
    """Records lost: queue full, a failed write, or put after close."""
    last_error: str | None
    """The latest write error, if any (kept after the log recovers)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "written": self.written,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }


class PredictionLog:
    """A background writer of prediction records (see the module docstring).

    ``on_drop(n)`` is called with every count of records lost (from the request's thread for
    a full queue, from the writer's thread for a failed write); it must be thread-safe.
    """

    def __init__(
        self, options: LogOptions, *, on_drop: Callable[[int], None] | None = None
    ) -> None:
        self.options = options
        self.folder = Path(options.path)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[tuple[str, Record] | None] = queue.Queue(options.queue_size)
        self._on_drop = on_drop
        self._drop_lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self._ok = True
        self.last_error: str | None = None
        self._segment_rows = 0
        self._segments = 0
        self._conn: sqlite3.Connection | None = None
        self.current: Path | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._closed = False
        self._thread.start()

    # ------------------------------------------------------------------ producer side

    def put(self, records: Sequence[Record]) -> int:
        """Queue prediction records; returns how many were dropped (queue full too long)."""
        return self._put("p", records)

    def put_feedback(self, records: Sequence[Record]) -> int:
        return self._put("f", records)

    def _put(self, kind: str, records: Sequence[Record]) -> int:
        if self._closed:
            self._drop(len(records))
            return len(records)
        dropped = 0
        wait = self.options.max_wait_ms / 1000.0
        deadline = time.monotonic() + wait
        for rec in records:
            try:
                self._queue.put_nowait((kind, rec))
            except queue.Full:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise queue.Full
                    self._queue.put((kind, rec), timeout=left)
                except queue.Full:
                    dropped += 1
        if dropped:
            self._drop(dropped)
        return dropped

    def _drop(self, n: int) -> None:
        with self._drop_lock:
            self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def health(self) -> LogHealth:
        """Whether the writer's last write succeeded, and the counts so far."""
        return LogHealth(self._ok, self.written, self.dropped, self.last_error)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued record is committed (for tests and shutdown)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._queue.unfinished_tasks == 0:
                return
            time.sleep(0.01)

    # ------------------------------------------------------------------ writer side

    def _open(self) -> sqlite3.Connection:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self._segments += 1
        path = self.folder / f"predlog-{stamp}-{os.getpid()}-{self._segments}.sqlite"
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("created", dt.datetime.now(dt.UTC).isoformat()),
                    ("pid", str(os.getpid())),
                ],
            )
        except BaseException:
            conn.close()
            raise
        self.current = path
        self._segment_rows = 0
        return conn

    def _rotate_if_needed(self) -> None:
        assert self._conn is not None and self.current is not None
        size = self.current.stat().st_size
        wal = self.current.with_name(self.current.name + "-wal")
        if wal.exists():
            size += wal.stat().st_size
        if size >= self.options.rotate_bytes or self._segment_rows >= self.options.rotate_rows:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = self._open()

    def _write(self, batch: list[tuple[str, Record]]) -> None:
        """Commit a batch; on failure roll back and retry record by record."""
        try:
            self._commit(batch)
        except Exception as exc:
            self._failed(exc)
            lost = 0
            for item in batch:  # isolate the records SQLite refuses; keep the others
                try:
                    self._commit([item])
                except Exception as one:
                    self._failed(one)
                    lost += 1
            if lost:
                log.error(
                    "prediction log: %d of %d records could not be written: %s",
                    lost, len(batch), self.last_error,
                )  # fmt: skip
                self._drop(lost)
            if lost == len(batch):
                return
        self._ok = True
        try:
            self._rotate_if_needed()
        except Exception as exc:  # the records are committed; the next write reopens
            self._failed(exc)
            self._close_connection()

    def _commit(self, batch: list[tuple[str, Record]]) -> None:
        if self._conn is None:
            self._conn = self._open()
        conn = self._conn
        preds = [r for k, r in batch if k == "p"]
        feedback = [r for k, r in batch if k == "f"]
        conn.execute("BEGIN")
        try:
            if preds:
                conn.executemany(_INSERT, preds)
            if feedback:
                conn.executemany(_FEEDBACK, feedback)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.written += len(preds)
        self._segment_rows += len(preds)

    def _rollback(self) -> None:
        """End a failed transaction; a connection that cannot is replaced (new segment)."""
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception:
            self._close_connection()

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("prediction log: closing a broken connection failed", exc_info=True)

    def _failed(self, exc: BaseException) -> None:
        self._ok = False
        self.last_error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[tuple[str, Record]] = []
            try:
                item = self._queue.get(timeout=_FLUSH_SECONDS)
            except queue.Empty:
                continue
            got = 1
            if item is None:
                stop = True
            else:
                batch.append(item)
            while len(batch) < _BATCH and not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                got += 1
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            try:
                if batch:
                    self._write(batch)
            except Exception as exc:  # the log must never take the server down
                log.exception("prediction log: could not write %d records", len(batch))
                self._failed(exc)
                self._drop(len(batch))
            finally:
                for _ in range(got):
                    self._queue.task_done()
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception as exc:
                self._failed(exc)
            finally:
                self._close_connection()


def read_log(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every prediction and feedback row of a log folder (for tests and small tools)."""
    preds: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob("*.sqlite")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            preds.extend(dict(r) for r in conn.execute("SELECT * FROM predictions"))
            feedback.extend(dict(r) for r in conn.execute("SELECT * FROM feedback"))
        finally:
            conn.close()
    return preds, feedback
