"""The prediction log: durable after close, rotated, never blocking for long."""

from __future__ import annotations

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
