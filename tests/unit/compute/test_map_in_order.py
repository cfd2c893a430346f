"""map_in_order: the streaming map every per-part stage uses."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.compute import map_in_order, open_executor


def _slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.02 * (x % 3))  # later calls often finish first
    return x * x, os.getpid()


def _fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad part {x}")
    return x


def test_results_come_in_call_order_whatever_finishes_first() -> None:
    with open_executor("local", workers=2) as ex:
        out = list(map_in_order(ex, _slow_square, [(i,) for i in range(12)]))
    assert [r for r, _ in out] == [i * i for i in range(12)]
    assert {pid for _, pid in out} != {os.getpid()}  # they ran on the workers


def test_one_call_runs_here_and_no_executor_runs_everything_here() -> None:
    with open_executor("local", workers=2) as ex:
        ((value, pid),) = map_in_order(ex, _slow_square, [(3,)])
    assert value == 9 and pid == os.getpid()
    assert {pid for _, pid in map_in_order(None, _slow_square, [(1,), (2,)])} == {os.getpid()}


def test_calls_are_read_lazily_at_most_workers_plus_one_ahead() -> None:
    taken: list[int] = []

    def calls() -> Iterator[tuple[int]]:
        for i in range(20):
            taken.append(i)
            yield (i,)

    with open_executor("serial") as ex:
        results = map_in_order(ex, _slow_square, calls())
        next(results)
        assert len(taken) <= ex.workers + 2  # the first result needs at most this many
        assert len(list(results)) == 19


def test_a_failing_task_raises_here() -> None:
    with open_executor("local", workers=2) as ex, pytest.raises(ValueError, match="bad part 5"):
        list(map_in_order(ex, _fail_on, [(i, 5) for i in range(10)]))


def _first_waits(i: int, folder: str) -> int:
    """Part 0 waits for ``release``; every other part leaves a mark as it runs."""
    if i == 0:
        deadline = time.monotonic() + 60
        while not (Path(folder) / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        (Path(folder) / f"ran-{i}").touch()
    return i


def test_a_slow_first_part_leaves_no_worker_idle(tmp_path: Path) -> None:
    """Places free as tasks finish, not in call order: while part 0 runs, the other worker
    goes on through the next parts (up to twice ``workers + 1`` results held). Before, it
    stopped after two, waiting for part 0's turn."""
    out: list[int] = []
    with open_executor("local", workers=2) as ex:
        calls = [(i, str(tmp_path)) for i in range(12)]
        consumer = threading.Thread(
            target=lambda: out.extend(map_in_order(ex, _first_waits, calls))
        )
        consumer.start()
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("ran-*"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        ran = len(list(tmp_path.glob("ran-*")))
        (tmp_path / "release").touch()
        consumer.join(60)
    assert ran == 5  # 2 workers: 3 running or queued, 6 held; part 0 is one of them
    assert out == list(range(12))
