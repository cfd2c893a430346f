"""The prediction log: durable after close, rotated, never blocking for long."""

from __future__ import annotations

import json
import time
from pathlib import Path

from modelyard.ops.serving.predlog import LogOptions, PredictionLog, read_log


def _rec(i: int) -> tuple[object, ...]:
    return (f"r{i}", 0, "2026-01-01T00:00:00+00:00", None, "/predict", "served", "m", "1",
            '{"x": 1}', '"a"', None, None, 0.1)  # fmt: skip


def test_everything_queued_is_written_on_close_and_rotated(tmp_path: Path) -> None:
    log = PredictionLog(LogOptions(path=tmp_path, rotate_rows=400))
    for i in range(0, 2000, 100):
        assert log.put([_rec(j) for j in range(i, i + 100)]) == 0
    log.put_feedback([("r1", 0, '"a"', "2026-01-01T00:00:01+00:00")])
    log.close()
    preds, feedback = read_log(tmp_path)
    assert sorted(int(p["request_id"][1:]) for p in preds) == list(range(2000))
    assert len(feedback) == 1
    assert len(list(tmp_path.glob("*.sqlite"))) >= 4  # rotated by rows
    assert not list(tmp_path.glob("*-wal")) or all(
        p.stat().st_size == 0 for p in tmp_path.glob("*-wal")
    )


def test_a_full_queue_drops_after_the_wait_instead_of_blocking(tmp_path: Path) -> None:
    log = PredictionLog(LogOptions(path=tmp_path, queue_size=1, max_wait_ms=5))
    start = time.perf_counter()
    dropped = sum(log.put([_rec(i) for i in range(200)]) for _ in range(5))
    assert time.perf_counter() - start < 5 * 0.005 * 200  # never waits per record
    log.close()
    preds, _ = read_log(tmp_path)
    assert dropped == log.dropped and len(preds) + dropped == 1000


def _wait_written(log: PredictionLog, n: int) -> None:
    log.flush()
    deadline = time.monotonic() + 10
    while log.written < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_record_sqlite_cannot_store_costs_that_record_only(tmp_path: Path) -> None:
    # issue 11 item 12: a lone surrogate cannot be encoded as UTF-8; the failed insert was never
    # rolled back, and every later batch failed ("cannot start a transaction within a
    # transaction") without counting anything as dropped.
    lost: list[int] = []
    log = PredictionLog(LogOptions(path=tmp_path), on_drop=lost.append)
    log.put([_rec(0), (*_rec(1)[:8], '{"x": "\ud800"}', *_rec(1)[9:]), _rec(2)])
    _wait_written(log, 2)
    for i in range(3, 10):  # later batches, one by one
        log.put([_rec(i)])
        _wait_written(log, i)
    health = log.health()
    log.close()
    preds, _ = read_log(tmp_path)
    assert sorted(p["request_id"] for p in preds) == sorted(f"r{i}" for i in range(10) if i != 1)
    assert log.dropped == 1 and sum(lost) == 1
    assert health.ok and health.written == 9
    assert health.last_error is not None and "surrogate" in health.last_error


def test_a_writer_that_cannot_write_says_so_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    lost: list[int] = []
    log = PredictionLog(LogOptions(path=folder, rotate_rows=1), on_drop=lost.append)
    log.put([_rec(0)])
    _wait_written(log, 1)
    assert log.health().ok
    for segment in folder.iterdir():  # the folder goes away (a volume unmounted, say)
        segment.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    log.put([_rec(1)])  # into the open (deleted) segment; opening the next one fails
    log.flush()
    assert not log.health().ok
    log.put([_rec(2), _rec(3)])
    log.flush()
    health = log.health()
    assert not health.ok and health.dropped == 2 and sum(lost) == 2
    assert health.as_dict()["status"] == "failing" and health.last_error
    folder.unlink()
    folder.mkdir()
    log.put([_rec(4)])
    _wait_written(log, 3)
    assert log.health().ok
    log.close()
    assert [p["request_id"] for p in read_log(folder)[0]] == ["r4"]


def test_logged_json_is_always_storable() -> None:
    from modelyard.ops.serving.predlog import dumps

    text = dumps({"island": "\ud800", "note": "café"})
    text.encode("utf-8")
    assert json.loads(text) == {"island": "\ud800", "note": "café"}
    assert dumps({"x": "café"}) == '{"x": "café"}'  # readable when it can be
    deep: list[object] = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    assert "_unserialisable" in dumps(deep)
