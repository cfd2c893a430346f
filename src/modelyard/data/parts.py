"""Per-part work over a table: one task per part through the executor, results in part order.

A data stage over a multi-part :class:`~modelyard.data.table.Table` submits one task per part
(a module-level function that reads its part, writes its output part itself and returns small
mergeable statistics). :func:`map_parts` keeps at most ``executor.workers + 1`` tasks in flight,
so memory stays flat whatever the table's size, and returns the results in part order, so what
the driver merges never depends on completion order or on where the tasks ran. A single task
runs inline, in this process: a one-part table costs no executor round trip.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.compute import Executor

PART = "part-{:05d}.parquet"
"""The name of part ``i`` of a table (as :class:`~modelyard.data.table.TableWriter` names it)."""


def part_path(folder: Path, index: int) -> Path:
    """Where part ``index`` of a table in ``folder`` goes (a task writes it itself)."""
    return folder / PART.format(index)


def map_parts(
    executor: Executor | None,
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
) -> list[Any]:
    """``[fn(*args) for args in tasks]``, run through ``executor``; results in task order.

    One task (or no executor) runs inline. Otherwise at most ``executor.workers + 1`` tasks are
    in flight; the driver waits for them in order. A task that raises cancels the rest and its
    exception is raised here.
    """
    if executor is None or len(tasks) <= 1:
        return [fn(*args) for args in tasks]
    limit = executor.workers + 1
    results: list[Any] = []
    pending: deque[Future[Any]] = deque()
    try:
        for args in tasks:
            if len(pending) >= limit:
                results.append(pending.popleft().result())
            pending.append(executor.submit(fn, *args))
        while pending:
            results.append(pending.popleft().result())
    except BaseException:
        executor.cancel(list(pending))
        raise
    return results
