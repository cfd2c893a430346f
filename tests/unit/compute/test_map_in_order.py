"""map_in_order: the streaming map every per-part stage uses."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

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
